//! S7 `private-match`: Apple's 2021 design, threshold private set intersection with synthetic
//! vouchers ([`crate::psi`] has the construction and its citation).
//!
//! - **Provider half:** builds the `α`-blinded cuckoo table of the list and announces it with
//!   the threshold `(t, s)` and the synthetic rate `p`. Per image it receives one voucher, and
//!   learns whether its outer layer opened (a match, or a synthetic voucher) and nothing else.
//!   It keeps each account's opened shares; once they hold enough real shares it recovers the
//!   account key and decrypts the visual derivatives (64×64 greyscale thumbnails) of exactly
//!   the real matches, into its review queue. After that, each new real match of the account
//!   opens at once.
//! - **Client half:** per image, a real voucher, or with probability `p` a synthetic one in its
//!   place (that image then cannot count). Its replies are empty: the device never learns
//!   whether anything matched, and never discloses on the provider's word. Its secret seed
//!   persists in its store.
//!
//! What the list being exact means: PSI matches equal hashes only, so an image whose PDQ hash
//! moved by one bit (a resize, a re-encode) is not matched. The fuzzy variant is separate work.

use crate::fingerprint::{Fingerprint, fingerprint};
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

/// S7's descriptor.
pub struct PrivateMatch;

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
}

impl Scheme for PrivateMatch {
    fn code(&self) -> &'static str {
        "S7"
    }
    fn name(&self) -> &'static str {
        "private-match"
    }
    fn summary(&self) -> &'static str {
        "Apple-style threshold PSI: a voucher per image, opened only for listed hashes, and derivatives decrypted once an account holds t matches"
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        let list = crate::read_list(&c.list)?;
        let secret = match &c.key {
            Some(path) => crate::load_or_create_secret(path)?,
            None => {
                let mut s = Zeroizing::new([0u8; 32]);
                rand::rng().fill_bytes(s.as_mut());
                s
            }
        };
        let th = Threshold {
            t: c.threshold,
            s: c.interleave,
        };
        Ok(Arc::new(Provider::new(
            &list,
            th,
            c.synthetic,
            c.epsilon,
            &secret,
        )?))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Ok(Box::new(Client::new(params, seed)?))
    }
    fn client_seeded(
        &self,
        params: &Value,
        seed: u64,
    ) -> Result<Box<dyn ClientScheme>, SchemeError> {
        let mut s = [0u8; 32];
        rand_chacha::ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut s);
        Ok(Box::new(Client::new(params, s)?))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let secret = crate::load_or_create_secret(&inputs.dir.join("psi.key"))?;
        Ok(Simulation::provider_only(Arc::new(Provider::new(
            inputs.list,
            Threshold {
                t: default_t(),
                s: default_s(),
            },
            default_p(),
            default_epsilon(),
            &secret,
        )?)))
    }
}

/// The 64×64 greyscale thumbnail a voucher carries, as a JPEG that fits the padded slot.
pub fn derivative(bytes: &[u8]) -> Result<Vec<u8>, SchemeError> {
    let img = crate::decode_image(bytes)?;
    let g = scanlab_imaging::quality::Gray::from_rgb(&img).resize_area(64, 64);
    let raw: Vec<u8> = g
        .data
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
    th: Threshold,
    synthetic: f64,
    table: Table,
    rng: rand_chacha::ChaCha20Rng,
}

impl Client {
    /// Reads the announcement; `seed` seeds its randomness (and the device secret, the first
    /// time this device has none).
    pub fn new(params: &Value, seed: [u8; 32]) -> Result<Client, SchemeError> {
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
        Ok(Client {
            th: a.threshold,
            synthetic: a.synthetic,
            table,
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
    /// The voucher, base64.
    pub voucher: String,
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "private-match"
    }
    fn on_attachment(&mut self, ctx: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        let hash = match fingerprint(a.media, a.bytes)? {
            Fingerprint::Image { hash, .. } => hash,
            Fingerprint::Video { .. } => return Err(SchemeError::Media(a.media).into()),
        };
        let device = self.device(ctx)?;
        let v = if self.rng.random_bool(self.synthetic) {
            device.synthetic(&self.table, &mut self.rng)
        } else {
            device.voucher(
                &self.table,
                &hash.to_bytes(),
                &derivative(a.bytes)?,
                &mut self.rng,
            )
        }
        .map_err(|e| ClientError::Scheme(e.to_string()))?;
        Ok(ScanAction::Request(json!(VoucherRequest {
            blob: a.attachment.blob.clone(),
            voucher: B64.encode(v),
        })))
    }
}

/// S7's provider half.
pub struct Provider {
    key: ProviderKey,
    th: Threshold,
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
    /// Builds the table of `list` from the provider's secret.
    pub fn new(
        list: &HashList,
        th: Threshold,
        synthetic: f64,
        epsilon: f64,
        secret: &[u8; 32],
    ) -> Result<Provider, SchemeError> {
        th.check().map_err(|e| SchemeError::Config(e.to_string()))?;
        if !(0.0..1.0).contains(&synthetic) {
            return Err(SchemeError::Config(format!(
                "synthetic rate {synthetic} outside [0, 1) (--synthetic)"
            )));
        }
        let items: Vec<[u8; 32]> = list.hashes().iter().map(|h| h.to_bytes()).collect();
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(
            Sha256::new()
                .chain_update(b"scanlab-psi-provider-v1")
                .chain_update(secret)
                .finalize()
                .into(),
        );
        let (table, key, _setup) = Table::build(&items, epsilon, &mut rng)
            .map_err(|e| SchemeError::Config(e.to_string()))?;
        let params = json!(Announced {
            threshold: th,
            synthetic,
            slots: table.points.len(),
            table: B64.encode(table.to_bytes()),
            list: SortedCommitment::new(list.hashes()).root(),
        });
        Ok(Provider { key, th, params })
    }
}

fn account_key(who: &str) -> String {
    format!("account {who}")
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "private-match"
    }
    fn public_params(&self) -> Value {
        self.params.clone()
    }
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        let r: VoucherRequest = crate::device_hash::parse(request)?;
        let voucher = B64
            .decode(&r.voucher)
            .map_err(|e| ScanError::Malformed(format!("voucher: {e}")))?;
        let seen = format!("seen {}", hex::encode(Sha256::digest(&voucher)));
        if ctx.state(&seen)?.is_some() {
            return Err(ScanError::Refused(PsiError::Replayed.to_string()));
        }
        let share = match self.key.open(&self.th, &voucher) {
            Ok(s) => s,
            Err(e @ PsiError::Tampered) => return Err(ScanError::Refused(e.to_string())),
            Err(e) => return Err(ScanError::Malformed(e.to_string())),
        };
        ctx.set_state(&seen, vec![1])?;
        let reply = json!({});
        let Some(share) = share else {
            return Ok(ScanOutcome {
                reply,
                derived: Some(json!({ "blob": r.blob, "opened": false })),
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
        if !duplicate {
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
            None if !duplicate && acc.shares.len() >= self.th.t => {
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
                    "threshold reached: {} of {}'s vouchers decrypt (t = {})",
                    acc.shares.len(),
                    ctx.who(),
                    self.th.t
                ),
                d.clone(),
            )?;
        }
        Ok(ScanOutcome {
            reply,
            derived: Some(json!({
                "blob": r.blob,
                "opened": true,
                "account_opened": acc.shares.len(),
                "recovered": acc.adkey.is_some(),
                "disclosed": disclosed.iter().map(|(b, _)| b).collect::<Vec<_>>(),
            })),
        })
    }
}
