//! S7 `private-match`: Apple's 2021 design, threshold private set intersection with synthetic
//! vouchers ([`crate::psi`] has the construction and its citation).
//!
//! - **Provider half:** builds the `α`-blinded cuckoo table of the list and announces it with
//!   the threshold `(t, s)` and the synthetic rate `p`. Per image it receives one voucher, and
//!   learns whether its outer layer opened (a match, or a synthetic voucher); the rate at which
//!   an account's vouchers open is a signal over time (see [`crate::psi`]'s weaknesses).
//!   It keeps each account's opened shares; once they hold enough real shares it recovers the
//!   account key and decrypts the visual derivatives (64×64 greyscale thumbnails) of exactly
//!   the real matches, into its review queue. After that, each new real match of the account
//!   opens at once.
//! - **Client half:** per image, a real voucher, or for a pseudorandom fraction `p` of images
//!   a synthetic one in its place (that image then cannot count). Every reply is the same
//!   empty object, a tampered voucher's included: the device never discloses on the
//!   provider's word. Its secret seed persists in its store.
//!
//! The threshold `t` is the number of real matches needed with no synthetic shares; with `e`
//! synthetic ones recovery needs `t + e/s` (see [`crate::psi`]), so the effective threshold of
//! an account grows with the images it sends. What the reply cannot hide: its **timing**. An
//! opened voucher updates the account's state and may run a recovery attempt before the
//! answer, so a client that times its own requests can tell, for vouchers it knows are real,
//! whether they opened. Answering first and doing the account work off the request path
//! would close it; that is not built. A seeded client half ([`Scheme::client_seeded`], for
//! simulations) repeats its randomness on every restart, so it must never run a real device.
//!
//! What the list being exact means: PSI matches equal hashes only, so an image whose PDQ hash
//! moved by one bit (a resize, a re-encode) is not matched.
//!
//! # S7f `private-match-fuzzy`: matching within a Hamming radius by bucketing
//! The fuzzy variant ([`Fuzzy`]) turns "within r bits" into exact PSI over buckets, as
//! locality-sensitive bucketing does (bit sampling: Indyk and Motwani, STOC 1998; the
//! similarity-based bucketing of Hua, Namavari, Cheng, Naaman and Ristenpart, USENIX Security
//! 2022, applies it to perceptual hashes). `k` public projections, each a set of `b` of the
//! hash's 256 bit positions drawn from an announced seed, turn a hash into `k` bucket items
//! `SHA-256(domain ‖ j ‖ the b sampled bits)`. The provider's table holds every bucket item of
//! every list entry; a device sends one voucher per bucket of its image, all carrying the same
//! share (of the image's full hash), so one image counts once toward `t`. A hash `d` bits from
//! an entry shares bucket `j` with probability `(1 − d/256)^b`, so it matches with probability
//! `1 − (1 − (1 − d/256)^b)^k`: for `b = 32, k = 16`, about 1.00 at d = 5, 0.92 at 15, 0.45 at
//! 25 and 0.23 at 31, and 16·n·2⁻³² for an unrelated hash against a list of n (the evaluation
//! measures it on photos). A synthetic image sends one synthetic voucher among `k − 1` that
//! match nothing.
//!
//! What it leaks beyond the exact variant: which buckets opened, and how many, for every
//! matching voucher (a real match opens as many buckets as it shares with an entry, which
//! grows as the distance shrinks; a synthetic image opens exactly one), so the provider learns
//! something of each match's distance and can tell multi-bucket real matches from synthetic
//! ones below the threshold. The evaluation's provider view holds the opened bucket indices.
//! It costs `k` vouchers per image.

use crate::psi::{Device, ProviderKey, PsiError, Share, Table, Threshold};
use crate::{Scheme, SchemeError, SimInputs, Simulation};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::{Rng, RngCore, SeedableRng};
use scanlab_hashlist::{HashList, ListRoot, SortedCommitment};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// S7's descriptor: exact (`private-match`, S7) or fuzzy (`private-match-fuzzy`, S7f).
pub struct PrivateMatch {
    /// The bucketing of the fuzzy variant; `None` for exact matching.
    pub fuzzy: Option<Fuzzy>,
}

/// The fuzzy variant's bucketing: `tables` projections of `bits` sampled bit positions each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fuzzy {
    /// Projections `k`, one voucher each per image.
    pub tables: usize,
    /// Sampled bits `b` per projection.
    pub bits: usize,
}

impl Fuzzy {
    /// The defaults: 16 projections of 32 bits.
    pub const DEFAULT: Fuzzy = Fuzzy {
        tables: 16,
        bits: 32,
    };

    fn check(&self) -> Result<(), SchemeError> {
        if !(1..=64).contains(&self.tables) || !(8..=256).contains(&self.bits) {
            return Err(SchemeError::Config(format!(
                "private-match-fuzzy: {} tables of {} bits; use 1..=64 tables of 8..=256 bits (--param tables, --param bits)",
                self.tables, self.bits
            )));
        }
        Ok(())
    }

    /// Each projection's bit positions, drawn from the announced public seed.
    fn projections(&self, seed: &[u8; 32]) -> Vec<Vec<usize>> {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(
            Sha256::new()
                .chain_update(b"scanlab-psi-fuzzy-projections-v1")
                .chain_update(seed)
                .finalize()
                .into(),
        );
        (0..self.tables)
            .map(|_| {
                let mut all: Vec<usize> = (0..256).collect();
                for i in 0..self.bits {
                    let j = rng.random_range(i..256);
                    all.swap(i, j);
                }
                let mut p = all[..self.bits].to_vec();
                p.sort_unstable();
                p
            })
            .collect()
    }
}

/// The bucket items of `hash` under `projections`.
fn buckets(projections: &[Vec<usize>], hash: &[u8; 32]) -> Vec<[u8; 32]> {
    projections
        .iter()
        .enumerate()
        .map(|(j, bits)| {
            let mut packed = vec![0u8; bits.len().div_ceil(8)];
            for (i, &p) in bits.iter().enumerate() {
                packed[i / 8] |= ((hash[p / 8] >> (p % 8)) & 1) << (i % 8);
            }
            Sha256::new()
                .chain_update(b"scanlab-psi-fuzzy-bucket-v1")
                .chain_update((j as u32).to_le_bytes())
                .chain_update(&packed)
                .finalize()
                .into()
        })
        .collect()
}

/// S7's configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The hash list file.
    pub list: PathBuf,
    /// Real matches an account needs before anything is disclosed.
    #[serde(default = "default_t")]
    pub threshold: usize,
    /// Interleaved polynomials per share (synthetic vouchers tolerated per real share above
    /// the threshold).
    #[serde(default = "default_s")]
    pub interleave: usize,
    /// Probability that a device sends a synthetic voucher in place of a real one.
    #[serde(default = "default_p")]
    pub synthetic: f64,
    /// Cuckoo table slack ε (slots = (1+ε)·n).
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// A file holding the provider's 32-byte secret (hex), created if missing: the table and
    /// `α` are derived from it, so a restart announces the same table. Without it both are
    /// random per start, and clients that pinned the old table refuse the new one.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Fuzzy variant: projections (default 16).
    #[serde(default)]
    pub tables: Option<usize>,
    /// Fuzzy variant: sampled bits per projection (default 32).
    #[serde(default)]
    pub bits: Option<usize>,
}

fn default_t() -> usize {
    3
}
fn default_s() -> usize {
    2
}
fn default_p() -> f64 {
    0.1
}
fn default_epsilon() -> f64 {
    1.1
}

fn psi(e: PsiError) -> SchemeError {
    SchemeError::Malformed(e.to_string())
}

/// The parameters a provider announces.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Announced {
    /// `(t, s)`.
    pub threshold: Threshold,
    /// The synthetic rate.
    pub synthetic: f64,
    /// Table slots.
    pub slots: usize,
    /// The table, base64 ([`Table::to_bytes`]).
    pub table: String,
    /// The list the provider says the table holds (not checkable: the table is blinded).
    pub list: ListRoot,
    /// The fuzzy variant's bucketing, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuzzy: Option<Fuzzy>,
    /// The seed of the fuzzy variant's projections, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_seed: Option<String>,
}

impl Scheme for PrivateMatch {
    fn code(&self) -> &'static str {
        if self.fuzzy.is_some() { "S7f" } else { "S7" }
    }
    fn name(&self) -> &'static str {
        if self.fuzzy.is_some() {
            "private-match-fuzzy"
        } else {
            "private-match"
        }
    }
    fn summary(&self) -> &'static str {
        if self.fuzzy.is_some() {
            "threshold PSI over bit-sampling buckets: a voucher per bucket, so hashes within a few bits of a listed one can match"
        } else {
            "Apple-style threshold PSI: a voucher per image, opened only for listed hashes, and derivatives decrypted once an account holds t matches"
        }
    }
    fn explanation(&self) -> &'static str {
        if self.fuzzy.is_some() {
            "Threshold private set intersection over bit-sampling buckets: like S7, but the device makes a voucher per bucket of hash bits, so a hash within a few bits of a listed one can match. More vouchers per image, and a provider that learns which buckets matched."
        } else {
            "Apple's 2021 design (threshold private set intersection): the device attaches a voucher to every image that the provider can open only if the image's hash is on the list, and the image's derivative is decrypted only once an account holds t matching vouchers. Only exact hash matches count; the provider learns nothing below the threshold."
        }
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        let fuzzy = match self.fuzzy {
            Some(f) => Some(Fuzzy {
                tables: c.tables.unwrap_or(f.tables),
                bits: c.bits.unwrap_or(f.bits),
            }),
            None if c.tables.is_some() || c.bits.is_some() => {
                return Err(SchemeError::Config(
                    "private-match: tables and bits are private-match-fuzzy's".into(),
                ));
            }
            None => None,
        };
        let list = crate::read_list(&c.list)?;
        let secret = crate::secret_or_fresh(c.key.as_deref())?;
        let th = Threshold {
            t: c.threshold,
            s: c.interleave,
        };
        Ok(Arc::new(Provider::new(
            self.name(),
            &list,
            th,
            c.synthetic,
            c.epsilon,
            fuzzy,
            &secret,
        )?))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client::new(
            self.name(),
            params,
            crate::client_seed(None),
        )?))
    }
    fn client_seeded(
        &self,
        params: &Value,
        seed: u64,
    ) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client::new(
            self.name(),
            params,
            crate::client_seed(Some(seed)),
        )?))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        // The served configuration, with the run's overrides: one path for both. The secret
        // (α, and S7f's projections) is drawn from the run's seed, so a run repeats (drawn at
        // random, S7f's buckets and so its recall changed between runs of one seed).
        let key = inputs.dir.join("psi.key");
        let mut secret = Zeroizing::new([0u8; 32]);
        rand_chacha::ChaCha20Rng::seed_from_u64(inputs.seed ^ 0x7073_692d_6b65_7921)
            .fill_bytes(secret.as_mut());
        crate::write_secret_file(&key, Zeroizing::new(hex::encode(*secret)).as_bytes())?;
        let mut c = inputs.params.clone();
        c.insert("list".into(), inputs.list_file.display().to_string().into());
        c.insert("key".into(), key.display().to_string().into());
        Ok(Simulation::provider_only(self.provider(&Value::Object(c))?))
    }
    fn sim_params(&self) -> &'static [&'static str] {
        if self.fuzzy.is_some() {
            &[
                "threshold",
                "interleave",
                "synthetic",
                "epsilon",
                "tables",
                "bits",
            ]
        } else {
            &["threshold", "interleave", "synthetic", "epsilon"]
        }
    }
}

/// The 64×64 greyscale thumbnail a voucher carries, as a JPEG that fits the padded slot.
pub fn derivative(bytes: &[u8]) -> Result<Vec<u8>, SchemeError> {
    derivative_of(&crate::fingerprint::gray64(&crate::decode_image(bytes)?))
}

/// The visual derivative of a 64×64 grey thumbnail (a video frame's, as
/// [`crate::fingerprint::CountedFrame`] holds it): JPEG, as small as it must be to fit.
pub fn derivative_of(gray64: &[f32]) -> Result<Vec<u8>, SchemeError> {
    let raw: Vec<u8> = gray64
        .iter()
        .flat_map(|&v| [v.clamp(0.0, 255.0).round() as u8; 3])
        .collect();
    let rgb = scanlab_imaging::RgbImage::from_raw(64, 64, raw)
        .ok_or_else(|| SchemeError::Malformed("thumbnail".into()))?;
    for q in [85, 70, 50, 30, 10] {
        let j = scanlab_imaging::edits::encode_jpeg(&rgb, q)
            .map_err(|e| SchemeError::Malformed(e.to_string()))?;
        if j.len() <= crate::psi::DERIVATIVE_LEN - 2 {
            return Ok(j);
        }
    }
    Err(SchemeError::Malformed("the thumbnail does not fit".into()))
}

/// S7's client half.
pub struct Client {
    name: &'static str,
    th: Threshold,
    synthetic: f64,
    table: Table,
    /// The fuzzy variant's projections (empty for exact matching).
    projections: Vec<Vec<usize>>,
    rng: rand_chacha::ChaCha20Rng,
}

impl Client {
    /// Reads the announcement of scheme `name`; `seed` seeds its randomness (and the device
    /// secret, the first time this device has none).
    pub fn new(name: &'static str, params: &Value, seed: [u8; 32]) -> Result<Client, SchemeError> {
        let a: Announced = serde_json::from_value(params.clone())
            .map_err(|e| SchemeError::Malformed(format!("private-match parameters: {e}")))?;
        a.threshold.check().map_err(psi)?;
        if !(0.0..1.0).contains(&a.synthetic) {
            return Err(SchemeError::Malformed(format!(
                "synthetic rate {} outside [0, 1)",
                a.synthetic
            )));
        }
        let bytes = B64
            .decode(&a.table)
            .map_err(|e| SchemeError::Malformed(format!("table: {e}")))?;
        let table = Table::from_bytes(&bytes, a.slots).map_err(psi)?;
        let projections = match a.fuzzy {
            Some(f) => {
                f.check()
                    .map_err(|e| SchemeError::Malformed(e.to_string()))?;
                let seed: [u8; 32] = a
                    .bucket_seed
                    .as_deref()
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        SchemeError::Malformed(
                            "fuzzy parameters without a 32-byte bucket_seed".into(),
                        )
                    })?;
                f.projections(&seed)
            }
            None => Vec::new(),
        };
        Ok(Client {
            name,
            th: a.threshold,
            synthetic: a.synthetic,
            table,
            projections,
            rng: rand_chacha::ChaCha20Rng::from_seed(seed),
        })
    }

    fn device(&mut self, ctx: &ClientCtx) -> Result<Device, ClientError> {
        let seed = match ctx.state("device-seed")? {
            Some(s) if s.len() == 32 => s.try_into().expect("32 bytes"),
            _ => {
                let mut s = [0u8; 32];
                self.rng.fill_bytes(&mut s);
                ctx.set_state("device-seed", &s)?;
                s
            }
        };
        Device::from_seed(seed, self.th).map_err(|e| ClientError::Scheme(e.to_string()))
    }
}

/// What a client sends per image: `POST /v1/scan`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VoucherRequest {
    /// The encrypted attachment's blob id.
    pub blob: String,
    /// The vouchers, base64: one (exact), or one per projection (fuzzy).
    pub vouchers: Vec<String>,
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        self.name
    }
    fn on_attachment(&mut self, ctx: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        let device = self.device(ctx)?;
        let blob = &a.attachment.blob;
        if a.media == scanlab_messenger::mls::Media::Video {
            // A voucher per counted frame, each carrying that frame's thumbnail.
            let video = crate::video_frames(a.bytes)?;
            let mut reqs = Vec::with_capacity(video.counted.len());
            for f in video.counted() {
                let d = derivative_of(&f.thumbnail)?;
                reqs.push(self.vouchers(&device, blob, &f.hash.hash, &d)?);
            }
            return Ok(if reqs.is_empty() {
                ScanAction::Nothing
            } else {
                ScanAction::Requests(reqs)
            });
        }
        let hash = crate::device_hash::own_hash(a)?;
        let d = derivative(a.bytes)?;
        Ok(ScanAction::Request(
            self.vouchers(&device, blob, &hash, &d)?,
        ))
    }
}

impl Client {
    /// The voucher request for one hash (an image's, or a video frame's) and its visual
    /// derivative `d`.
    fn vouchers(
        &mut self,
        device: &Device,
        blob: &str,
        hash: &scanlab_pdq::Hash256,
        d: &[u8],
    ) -> Result<Value, ClientError> {
        let image = hash.to_bytes();
        let items = if self.projections.is_empty() {
            vec![image]
        } else {
            buckets(&self.projections, &image)
        };
        let err = |e: PsiError| ClientError::Scheme(e.to_string());
        let mut vouchers = Vec::with_capacity(items.len());
        if device.is_synthetic(&image, self.synthetic) {
            // One synthetic voucher among vouchers that match nothing.
            let at = self.rng.random_range(0..items.len());
            for i in 0..items.len() {
                let v = if i == at {
                    device.synthetic(&self.table, &image, &mut self.rng)
                } else {
                    let mut nothing = [0u8; 32];
                    self.rng.fill_bytes(&mut nothing);
                    device.voucher_for(&self.table, &nothing, &image, d, &mut self.rng)
                };
                vouchers.push(B64.encode(v.map_err(err)?));
            }
        } else {
            for item in &items {
                let v = device.voucher_for(&self.table, item, &image, d, &mut self.rng);
                vouchers.push(B64.encode(v.map_err(err)?));
            }
        }
        Ok(json!(VoucherRequest {
            blob: blob.to_string(),
            vouchers,
        }))
    }
}

/// Most opened shares the provider keeps per account: beyond it, further shares are not
/// stored, since a recovery attempt costs about `n⁴·s³` field operations in their number `n`.
pub const MAX_SHARES: usize = 512;

/// S7's provider half.
pub struct Provider {
    /// Held across each request's read, update and write of account state and replay marks,
    /// so two concurrent requests cannot lose a share or both pass the replay check.
    lock: std::sync::Mutex<()>,
    name: &'static str,
    key: ProviderKey,
    th: Threshold,
    vouchers_per_image: usize,
    params: Value,
}

/// What the provider keeps per account: its opened shares, with the blob each came with.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Account {
    shares: Vec<(String, Share)>,
    /// The recovered account key, hex, once the threshold is reached.
    adkey: Option<String>,
}

impl Provider {
    /// Builds the table of `list` (its bucket items, with `fuzzy`) from the provider's
    /// secret, as scheme `name`.
    pub fn new(
        name: &'static str,
        list: &HashList,
        th: Threshold,
        synthetic: f64,
        epsilon: f64,
        fuzzy: Option<Fuzzy>,
        secret: &[u8; 32],
    ) -> Result<Provider, SchemeError> {
        if let Some(f) = &fuzzy {
            f.check()?;
        }
        th.check().map_err(|e| {
            SchemeError::Config(format!(
                "private-match: {e} (--param threshold, --param interleave)"
            ))
        })?;
        if !(0.0..1.0).contains(&synthetic) {
            return Err(SchemeError::Config(format!(
                "private-match: synthetic rate {synthetic} outside [0, 1) (--param synthetic)"
            )));
        }
        let hashes: Vec<[u8; 32]> = list.hashes().iter().map(|h| h.to_bytes()).collect();
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(
            Sha256::new()
                .chain_update(b"scanlab-psi-provider-v1")
                .chain_update(secret)
                .finalize()
                .into(),
        );
        // The projections are public, drawn apart from the table's own seed.
        let mut bucket_seed = [0u8; 32];
        rng.fill_bytes(&mut bucket_seed);
        let items: Vec<[u8; 32]> = match &fuzzy {
            None => hashes,
            Some(f) => {
                let p = f.projections(&bucket_seed);
                hashes.iter().flat_map(|h| buckets(&p, h)).collect()
            }
        };
        let (table, key, _setup) = Table::build(&items, epsilon, &mut rng)
            .map_err(|e| SchemeError::Config(e.to_string()))?;
        let params = json!(Announced {
            threshold: th,
            synthetic,
            slots: table.points.len(),
            table: B64.encode(table.to_bytes()),
            list: SortedCommitment::new(list.hashes()).root(),
            fuzzy,
            bucket_seed: fuzzy.map(|_| hex::encode(bucket_seed)),
        });
        Ok(Provider {
            lock: std::sync::Mutex::new(()),
            name,
            key,
            th,
            vouchers_per_image: fuzzy.map_or(1, |f| f.tables),
            params,
        })
    }
}

fn account_key(who: &str) -> String {
    format!("account {who}")
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        self.name
    }
    fn public_params(&self) -> Value {
        self.params.clone()
    }
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        let r: VoucherRequest = crate::device_hash::parse(request)?;
        if r.vouchers.len() != self.vouchers_per_image {
            return Err(ScanError::Malformed(format!(
                "{} vouchers, not {}",
                r.vouchers.len(),
                self.vouchers_per_image
            )));
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut opened = Vec::new();
        let mut tampered = Vec::new();
        let mut share = None;
        let mut seen = Vec::with_capacity(r.vouchers.len());
        for (i, v) in r.vouchers.iter().enumerate() {
            let voucher = B64
                .decode(v)
                .map_err(|e| ScanError::Malformed(format!("voucher {i}: {e}")))?;
            let digest = format!("seen {}", hex::encode(Sha256::digest(&voucher)));
            if ctx.state(&digest)?.is_some() || seen.contains(&digest) {
                return Err(ScanError::Refused(PsiError::Replayed.to_string()));
            }
            seen.push(digest);
            match self.key.open(&self.th, &voucher) {
                Ok(None) => {}
                Ok(Some(s)) => {
                    opened.push(i);
                    share.get_or_insert(s);
                }
                // Answered as a non-match: a refusal here would tell the client that the
                // hash it built this voucher for is listed. Recorded for the provider.
                Err(PsiError::Tampered) => tampered.push(i),
                Err(e) => return Err(ScanError::Malformed(e.to_string())),
            }
        }
        for d in &seen {
            ctx.set_state(d, vec![1])?;
        }
        let reply = json!({});
        let Some(share) = share else {
            return Ok(ScanOutcome {
                reply,
                derived: Some(json!({ "blob": r.blob, "opened": opened, "tampered": tampered })),
            });
        };
        let key = account_key(ctx.who());
        let mut acc: Account = match ctx.state(&key)? {
            Some(b) => {
                serde_json::from_slice(&b).map_err(|e| ScanError::Internal(e.to_string()))?
            }
            None => Account::default(),
        };
        // A second share at the same x is the same image again: it does not count twice.
        let duplicate = acc.shares.iter().any(|(_, s)| s.x == share.x);
        let full = acc.shares.len() >= MAX_SHARES;
        if !duplicate && !full {
            acc.shares.push((r.blob.clone(), share.clone()));
        }
        let mut disclosed = Vec::new();
        match acc.adkey.as_ref().and_then(|k| hex::decode(k).ok()) {
            Some(k) => {
                let k: [u8; 32] = k
                    .try_into()
                    .map_err(|_| ScanError::Internal("adkey".into()))?;
                if let Some(d) = crate::psi::open_with(&k, &share) {
                    disclosed.push((r.blob.clone(), d));
                }
            }
            None if !duplicate && !full && acc.shares.len() >= self.th.t => {
                let shares: Vec<Share> = acc.shares.iter().map(|(_, s)| s.clone()).collect();
                if let Some(rec) = crate::psi::recover(&shares, &self.th) {
                    acc.adkey = Some(hex::encode(*rec.adkey));
                    for (i, d) in rec.real {
                        disclosed.push((acc.shares[i].0.clone(), d));
                    }
                }
            }
            None => {}
        }
        ctx.set_state(
            &key,
            serde_json::to_vec(&acc).map_err(|e| ScanError::Internal(e.to_string()))?,
        )?;
        for (blob, d) in &disclosed {
            ctx.submit_review(
                "provider",
                blob,
                &format!(
                    "threshold reached: {}'s account key recovered from its opened shares (t = {}, {} shares held)",
                    ctx.who(),
                    self.th.t,
                    acc.shares.len()
                ),
                d.clone(),
            )?;
        }
        Ok(ScanOutcome {
            reply,
            derived: Some(json!({
                "blob": r.blob,
                "opened": opened,
                "tampered": tampered,
                "account_opened": acc.shares.len(),
                "recovered": acc.adkey.is_some(),
                "disclosed": disclosed.iter().map(|(b, _)| b).collect::<Vec<_>>(),
            })),
        })
    }
}
