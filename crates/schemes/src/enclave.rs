//! S5 `enclave`: the Commission paper's shortlisted "secure enclave in the ESP server", as a
//! **simulated** trusted execution environment.
//!
//! # Protocol
//! 1. **The enclave** (`scanlab enclave`, a separate process; or [`Enclave`] in process for
//!    simulations) generates an HPKE key pair at start and never lets the secret out. What it
//!    runs is its [`Measured`] configuration: the SHA-256 of its code, the [`ListRoot`] of its
//!    list (the same value as the log head's sorted root for that list) and its radius. Its
//!    **measurement** is `SHA-256("scanlab-enclave-measurement-v2" ‖ code ‖ list root ‖
//!    distinct (u64) ‖ radius (u32))`, over fixed-width bytes, computed by whoever checks it,
//!    never taken from the enclave's word.
//! 2. **Attestation** ([`Attestation`]), on request with a nonce: an Ed25519 signature by the
//!    (simulated) hardware vendor over `"scanlab-attestation-v2" ‖ measurement ‖ enclave key
//!    ‖ issued ‖ expires ‖ nonce`, valid for [`ATTESTATION_LIFETIME`]. The provider asks with a
//!    fresh nonce and checks it came back; clients check the signature (strictly), the
//!    expiry, and that the measurement is one they accept.
//! 3. **The provider** publishes, at `GET /v1/scheme`, its **allow-list** of measurements in
//!    the scheme parameters, which every client pins with the announcement (so a provider that
//!    later adds a measurement, for an enclave with another list or purpose, is seen as a
//!    scheme change: [`scanlab_messenger::client::ClientError::SchemeChanged`]), and the current attestation under
//!    `params.fresh`, which changes daily and is not pinned but verified.
//! 4. **The client** seals each image to the attested enclave:
//!    `HPKE.Seal(enclave_pk, info = "scanlab-enclave-v1", aad = blob id, image)`, with the
//!    encapsulation's randomness drawn from a fresh seed that it puts inside the message's
//!    plaintext (`scheme.enclave_seed`), which only recipients decrypt.
//! 5. **The provider** relays the capsule to the enclave, authenticating itself with the caller
//!    token the enclave wrote at start (`DATA/caller.token`, 0600); the enclave refuses any
//!    other caller, so it is not a list-membership oracle for the network. It opens the
//!    capsule, hashes it (PDQ), matches it, and returns a verdict. On a match — and only then
//!    — the verdict carries the image, and the provider puts it in its review queue (submitter
//!    `enclave`). The provider learns the verdict bit for every image, and, holding the caller
//!    token, can itself seal any image it likes to ask whether it is listed.
//! 6. **The recipient** checks that what the enclave scanned is what it received: it re-runs
//!    the seal on the image it decrypted with the seed (under the enclave key the sender names
//!    beside it, `scheme.enclave_key`, so a re-keyed enclave does not break old messages), and
//!    compares the capsule's SHA-256 with
//!    the provider's receipt for the blob (`GET /v1/scan/receipt/{blob}`, recorded when the
//!    capsule was relayed). A modified sender that seals a decoy to the enclave, or sends the
//!    image without sealing it, is refused by every honest recipient. This is verification by
//!    re-encryption, as in S2 (Fujisaki and Okamoto, CRYPTO 1999). It trusts the provider's
//!    receipt, which is the provider's interest here; and sender and recipient both running
//!    modified clients escape it.
//!
//! # What the simulation models, and what it cannot
//! - **Modelled:** attestation as a signed, fresh, canonical statement of code, list and
//!   radius; key custody (the enclave's secret key exists only in the enclave process); who
//!   controls the allow-list (the provider, who can add any measurement, including an enclave
//!   with another list or another purpose, visibly to clients that pinned the old one); and
//!   exactly what crosses each boundary (recorded in the provider view).
//! - **Not modelled:** hardware isolation. Here the enclave is an ordinary process that its
//!   operator can read; the vendor key is a fixed, published test key ([`vendor_key`]), so
//!   anyone can forge an attestation. Side channels (cache timing, power, speculative
//!   execution), which have repeatedly broken SGX, vendor compromise and revocation lists
//!   (here, expiry stands in for revocation) are outside it too. The simulation shows what
//!   the design *promises* under its own assumptions, and where those assumptions sit.

use crate::party::{Guard, Link};
use crate::seal::{self, KeyPair};
use crate::{Matcher, Party, Scheme, SchemeError, Secret, SimInputs, Simulation, b64, b64_field};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use scanlab_hashlist::ListRoot;
use scanlab_messenger::client::ClientError;
use scanlab_messenger::commit::Db;
use scanlab_messenger::record::{Pending, Recorded};
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use scanlab_messenger::{SqliteStore, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// HPKE `info` of image capsules to the enclave.
pub const INFO: &[u8] = b"scanlab-enclave-v1";
const ATTEST_CONTEXT: &[u8] = b"scanlab-attestation-v2";
const MEASURE_CONTEXT: &[u8] = b"scanlab-enclave-measurement-v2";
/// How long an attestation is valid: a day, in seconds.
pub const ATTESTATION_LIFETIME: u64 = 24 * 3600;
/// Clock difference tolerated on an attestation's issue time.
pub const CLOCK_SKEW: u64 = 300;

/// The simulated hardware vendor's signing key. It is derived from a published string, so it
/// is no secret: see the module docs.
pub fn vendor_key() -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(b"scanlab simulated TEE vendor key v1").into())
}

/// The vendor's public key, which clients ship with.
pub fn vendor_public() -> VerifyingKey {
    vendor_key().verifying_key()
}

/// SHA-256 of the running binary: the code an enclave process measures.
pub fn own_code_digest() -> [u8; 32] {
    std::env::current_exe()
        .and_then(std::fs::read)
        .map(|b| Sha256::digest(&b).into())
        .unwrap_or([0; 32])
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What an enclave runs, as measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Measured {
    /// SHA-256 of its code.
    #[serde(with = "hex_array")]
    pub code_sha256: [u8; 32],
    /// The list it matches against.
    pub list: ListRoot,
    /// Its match radius.
    pub radius: u32,
}

impl Measured {
    /// The measurement: a hash of fixed-width bytes, so it has one encoding.
    pub fn measurement(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(MEASURE_CONTEXT);
        h.update(self.code_sha256);
        h.update(self.list.root);
        h.update(self.list.distinct.to_be_bytes());
        h.update(self.radius.to_be_bytes());
        h.finalize().into()
    }
}

/// A fresh, signed statement of what runs in the enclave and which key it holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attestation {
    /// What runs.
    pub measured: Measured,
    /// The enclave's HPKE public key.
    #[serde(with = "hex_array")]
    pub enclave_key: [u8; 32],
    /// When it was signed (seconds since the epoch).
    pub issued: u64,
    /// When it stops being valid.
    pub expires: u64,
    /// The nonce of the request it answers.
    #[serde(with = "hex_array")]
    pub nonce: [u8; 32],
    /// The vendor's Ed25519 signature.
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// Why an attestation was refused, in words a user can act on.
fn refuse(m: impl Into<String>) -> SchemeError {
    SchemeError::Attestation(m.into())
}

impl Attestation {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut m = ATTEST_CONTEXT.to_vec();
        m.extend_from_slice(&self.measured.measurement());
        m.extend_from_slice(&self.enclave_key);
        m.extend_from_slice(&self.issued.to_be_bytes());
        m.extend_from_slice(&self.expires.to_be_bytes());
        m.extend_from_slice(&self.nonce);
        m
    }

    /// The measurement, hex.
    pub fn measurement_hex(&self) -> String {
        hex::encode(self.measured.measurement())
    }

    /// Checks the vendor signature (strictly), that the attestation is valid at `now`, and
    /// that its measurement is on `accepted`; returns the enclave's public key to seal to.
    pub fn verify(
        &self,
        vendor: &VerifyingKey,
        accepted: &[String],
        now: u64,
    ) -> Result<[u8; 32], SchemeError> {
        vendor
            .verify_strict(
                &self.signed_bytes(),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| refuse("the vendor's signature does not verify"))?;
        if self.issued > now.saturating_add(CLOCK_SKEW) {
            return Err(refuse("the attestation is issued in the future"));
        }
        if now >= self.expires {
            return Err(refuse(
                "the attestation has expired; the provider must fetch a fresh one",
            ));
        }
        let m = self.measurement_hex();
        if !accepted.iter().any(|a| a.eq_ignore_ascii_case(&m)) {
            return Err(refuse(format!(
                "the measurement {m} is not on the allow-list this client pinned"
            )));
        }
        Ok(self.enclave_key)
    }
}

/// What the provider sends the enclave for one image: `POST /scan`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnclaveRequest {
    /// The blob id (the capsule's associated data).
    pub blob: String,
    /// The capsule, base64.
    pub sealed: String,
}

/// What the enclave answers for one image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The match, if any.
    pub matched: Option<crate::MatchInfo>,
    /// The image, base64, present only on a match (the forward to the review queue).
    pub image: Option<String>,
    /// Why, when it is more than the match (a video: how many of its frames matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The enclave: its key, its list, and what it runs.
pub struct Enclave {
    keys: Arc<KeyPair>,
    matcher: Matcher,
    measured: Measured,
}

impl Enclave {
    /// Starts an enclave over `matcher`, measuring `code_digest` and the list.
    pub fn new(matcher: Matcher, code_digest: [u8; 32]) -> Enclave {
        Enclave {
            measured: Measured {
                code_sha256: code_digest,
                list: matcher.list_root(),
                radius: matcher.radius(),
            },
            keys: Arc::new(KeyPair::generate()),
            matcher,
        }
    }

    /// A build that runs `matcher` but attests `claimed`. Real hardware measures the code it
    /// loads, so no genuine attestation says this: it is what a stolen or compelled vendor
    /// signing key buys (the simulated vendor key signs whatever it is given). The evaluation
    /// uses it to show what clients that check attestations then send to a rogue enclave.
    pub fn dangerous_claiming(matcher: Matcher, claimed: Measured) -> Enclave {
        Enclave {
            measured: claimed,
            keys: Arc::new(KeyPair::generate()),
            matcher,
        }
    }

    /// What it runs.
    pub fn measured(&self) -> &Measured {
        &self.measured
    }

    /// A fresh attestation answering `nonce`, valid from `now` for [`ATTESTATION_LIFETIME`]:
    /// the simulated hardware signs it with the vendor key.
    pub fn attest(&self, nonce: [u8; 32], now: u64) -> Attestation {
        let mut a = Attestation {
            measured: self.measured,
            enclave_key: self.keys.public(),
            issued: now,
            expires: now.saturating_add(ATTESTATION_LIFETIME),
            nonce,
            signature: [0; 64],
        };
        a.signature = vendor_key().sign(&a.signed_bytes()).to_bytes();
        a
    }

    /// The enclave's key pair: what a compromise of the enclave (a side-channel leak, a rogue
    /// operator) yields. The evaluation measures what it opens from the provider's records.
    pub fn key(&self) -> Arc<KeyPair> {
        self.keys.clone()
    }

    /// Opens, hashes and matches one sealed image; also returns what it derived (the hash and
    /// the match), for its view.
    pub fn scan(&self, blob: &str, capsule: &[u8]) -> Result<(Verdict, Value), SchemeError> {
        let image = self.keys.open(INFO, blob.as_bytes(), capsule)?;
        let (matched, reason, derived) = match crate::pdq_of(&image) {
            Ok(pdq) => {
                let matched = self.matcher.check(&pdq.hash);
                let derived =
                    json!({ "blob": blob, "hash": pdq.hash.to_string(), "match": matched });
                (matched, None, derived)
            }
            // Not an image: the enclave sees the whole file, and tries it as a video.
            Err(image_error @ SchemeError::Image(_)) => {
                let video = crate::fingerprint::scan_video(&image).map_err(|_| image_error)?;
                let per: Vec<Option<crate::MatchInfo>> = video
                    .counted()
                    .map(|f| self.matcher.check(&f.hash.hash))
                    .collect();
                let reasons: Vec<Option<String>> =
                    per.iter().map(|m| m.as_ref().map(|m| m.reason())).collect();
                let reason = crate::video_verdict(&reasons);
                let matched = reason
                    .as_ref()
                    .and_then(|_| per.iter().flatten().next().cloned());
                let frames: Vec<_> = video.frames.iter().map(|f| &f.hash).collect();
                let derived =
                    json!({ "blob": blob, "frames": frames, "matches": per, "match": matched });
                (matched, reason, derived)
            }
            Err(e) => return Err(e),
        };
        Ok((
            Verdict {
                image: matched.is_some().then(|| b64(&image)),
                matched,
                reason,
            },
            derived,
        ))
    }
}

/// The enclave as a recorded service: every request it receives and every answer it gives,
/// and what it derives, land in its own view (`DIR/enclave.sqlite`). Only a caller holding its
/// caller token may scan.
pub struct EnclaveService {
    enclave: Arc<Enclave>,
    db: Db,
    guard: Guard,
}

pub use crate::party::CALLER_TOKEN_FILE;

impl EnclaveService {
    /// The enclave recording into `data`, with a fresh caller token written to
    /// `data/caller.token` (0600) for the provider; returns the service and the token.
    pub fn open(
        enclave: Arc<Enclave>,
        data: &Path,
    ) -> Result<(Arc<EnclaveService>, Zeroizing<String>), SchemeError> {
        let (guard, token) = Guard::issue(data)?;
        let service = Arc::new(EnclaveService {
            enclave,
            db: Db::start(Box::new(SqliteStore::open_party(data, "enclave")?)),
            guard,
        });
        Ok((service, token))
    }
}

impl Recorded for EnclaveService {
    fn db(&self) -> &Db {
        &self.db
    }
    fn body_limit(&self, _path: &str) -> usize {
        64 << 20
    }
    fn requires_auth(&self, path: &str) -> bool {
        path == "/scan"
    }
    async fn who(&self, parts: &axum::http::request::Parts) -> Result<Option<String>, StoreError> {
        Ok(self.guard.who(parts))
    }
}

/// The enclave's HTTP interface, for `scanlab enclave`: `GET /attestation?nonce=HEX`, and
/// `POST /scan {blob, sealed}` → [`Verdict`] for the caller holding the caller token, behind
/// the recording layer.
pub fn router(service: Arc<EnclaveService>) -> axum::Router {
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    #[derive(serde::Deserialize)]
    struct Nonce {
        nonce: String,
    }
    async fn attestation(
        State(s): State<Arc<EnclaveService>>,
        Query(q): Query<Nonce>,
    ) -> Result<axum::Json<Attestation>, (StatusCode, String)> {
        let mut nonce = [0u8; 32];
        hex::decode_to_slice(&q.nonce, &mut nonce).map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                "nonce: expected 64 hex characters".to_string(),
            )
        })?;
        Ok(axum::Json(s.enclave.attest(nonce, now())))
    }
    async fn scan(
        State(s): State<Arc<EnclaveService>>,
        pending: Pending,
        axum::Json(req): axum::Json<Value>,
    ) -> Result<axum::Json<Verdict>, (StatusCode, String)> {
        let bad = |e: SchemeError| (StatusCode::BAD_REQUEST, e.to_string());
        let req: EnclaveRequest =
            serde_json::from_value(req).map_err(|e| bad(SchemeError::Malformed(e.to_string())))?;
        let capsule = b64_field(&json!({ "s": req.sealed }), "s").map_err(bad)?;
        let e = s.enclave.clone();
        let (verdict, derived) = tokio::task::spawn_blocking(move || e.scan(&req.blob, &capsule))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(bad)?;
        pending.stage(scanlab_messenger::record::derived(
            None,
            "POST /scan",
            &derived,
        ));
        Ok(axum::Json(verdict))
    }
    axum::Router::new()
        .route("/attestation", get(attestation))
        .route("/scan", post(scan))
        .layer(axum::middleware::from_fn_with_state(
            service.clone(),
            scanlab_messenger::record::record_layer::<EnclaveService>,
        ))
        .with_state(service)
}

/// How the provider reaches its enclave, and the caller token it authenticates with.
#[derive(Clone)]
pub struct EnclaveLink(Link);

fn enclave_err(e: impl std::fmt::Display) -> SchemeError {
    SchemeError::Party(e.to_string())
}

impl EnclaveLink {
    /// An in-process link to `service` (simulations), through the enclave's own router and
    /// recording layer, minus the socket.
    pub fn local(service: Arc<EnclaveService>, token: Zeroizing<String>) -> EnclaveLink {
        EnclaveLink(Link::local(router(service), token))
    }

    /// A separate `scanlab enclave` process, by base URL, with its caller token.
    pub fn http(url: &str, token: Zeroizing<String>) -> EnclaveLink {
        EnclaveLink(Link::http(url, token))
    }

    /// A fresh attestation answering a random nonce, checked to answer it.
    pub fn attestation(&self) -> Result<Attestation, SchemeError> {
        use rand::RngCore;
        let mut nonce = [0u8; 32];
        rand::rng().fill_bytes(&mut nonce);
        let path = format!("/attestation?nonce={}", hex::encode(nonce));
        let a: Attestation = serde_json::from_value(self.0.get(&path)?).map_err(enclave_err)?;
        if a.nonce != nonce {
            return Err(refuse(
                "the enclave's attestation answers another nonce (a replay)",
            ));
        }
        Ok(a)
    }

    /// Sends one capsule for scanning.
    pub fn scan(&self, blob: &str, capsule: &[u8]) -> Result<Verdict, SchemeError> {
        let req = EnclaveRequest {
            blob: blob.to_string(),
            sealed: b64(capsule),
        };
        serde_json::from_value(self.0.post("/scan", &json!(req))?).map_err(enclave_err)
    }
}

/// S5's descriptor.
pub struct EnclaveScheme;

/// S5's configuration: where the enclave is, its caller token, and the allow-list the
/// provider publishes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of a running `scanlab enclave`.
    pub enclave: String,
    /// The enclave's caller token file (`caller.token` in its data directory).
    pub enclave_token: PathBuf,
    /// Measurements (hex) clients should accept; empty means the attached enclave's own.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// The parameters clients download.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// The provider's allow-list of measurements: pinned by clients with the announcement.
    pub allow: Vec<String>,
    /// What changes without changing the scheme, verified rather than pinned.
    pub fresh: Fresh,
}

/// The unpinned part of the parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fresh {
    /// The enclave's current attestation.
    pub attestation: Attestation,
}

impl Scheme for EnclaveScheme {
    fn code(&self) -> &'static str {
        "S5"
    }
    fn name(&self) -> &'static str {
        "enclave"
    }
    fn summary(&self) -> &'static str {
        "the device seals each image to an attested enclave at the provider, which matches it and forwards matches"
    }
    fn explanation(&self) -> &'static str {
        "Option (c) of the 2020 paper, a secure enclave at the provider: the device checks the enclave's attestation against an allow-list of code measurements, then seals each image to it; the enclave decrypts, hashes and matches, and forwards matches to review. The provider relays sealed bytes; the enclave sees every photo, and its privacy rests on the hardware vendor's key and the allow-list the provider publishes."
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        let token = crate::party::read_token(&c.enclave_token, "--enclave-token")?;
        Ok(Arc::new(Provider::new(
            EnclaveLink::http(&c.enclave, token),
            c.allow,
        )?))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client::from_params(params)?))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let e = Arc::new(Enclave::new(
            Matcher::new(inputs.list.clone(), crate::DEFAULT_RADIUS)?,
            own_code_digest(),
        ));
        let data = inputs.dir.join("enclave");
        let (service, token) = EnclaveService::open(e.clone(), &data)?;
        Ok(Simulation {
            provider: Arc::new(Provider::new(
                EnclaveLink::local(service, token),
                Vec::new(),
            )?),
            parties: vec![Party {
                name: "enclave".into(),
                data,
            }],
            secrets: vec![Secret {
                holder: "enclave".into(),
                key: e.key(),
                info: INFO.to_vec(),
            }],
        })
    }
}

/// S5's client half: verified the attestation once, seals every image to the enclave, and
/// checks the images it receives against the provider's scan receipts.
pub struct Client {
    enclave_key: [u8; 32],
    pending_seed: Option<Zeroizing<[u8; 32]>>,
}

fn refused(m: impl std::fmt::Display) -> ClientError {
    ClientError::Scheme(format!("enclave: {m}; the message is refused"))
}

impl Client {
    /// Verifies the attestation the provider announces against the vendor key the client
    /// ships with, the clock, and the allow-list it pinned with the announcement.
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        let p: Params = serde_json::from_value(params.clone())
            .map_err(|e| refuse(format!("malformed: {e}")))?;
        Ok(Client {
            enclave_key: p
                .fresh
                .attestation
                .verify(&vendor_public(), &p.allow, now())?,
            pending_seed: None,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "enclave"
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        use rand::RngCore;
        let blob = &a.attachment.blob;
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(seed.as_mut());
        let capsule = seal::seal_seeded(&self.enclave_key, INFO, blob.as_bytes(), a.bytes, &seed)
            .map_err(SchemeError::from)?;
        self.pending_seed = Some(seed);
        Ok(ScanAction::Request(json!(EnclaveRequest {
            blob: blob.clone(),
            sealed: b64(&capsule),
        })))
    }
    fn inner_fields(&mut self, _: &ClientCtx, _chat: &str) -> Result<Option<Value>, ClientError> {
        Ok(self.pending_seed.take().map(|s| {
            json!({ "enclave_seed": hex::encode(s.as_ref()), "enclave_key": hex::encode(self.enclave_key) })
        }))
    }
    fn on_receive(
        &mut self,
        ctx: &ClientCtx,
        m: &scanlab_messenger::scan::Delivered,
    ) -> Result<(), ClientError> {
        let v: Value = serde_json::from_slice(&m.plaintext).map_err(refused)?;
        let Some(blob) = v["attachment"]["blob"].as_str() else {
            return Ok(());
        };
        let image = m
            .attachment
            .as_ref()
            .ok_or_else(|| refused("the attachment was not opened"))?;
        let mut seed = Zeroizing::new([0u8; 32]);
        v["scheme"]["enclave_seed"]
            .as_str()
            .and_then(|s| hex::decode_to_slice(s, seed.as_mut()).ok())
            .ok_or_else(|| refused("the image was sent without being sealed to the enclave"))?;
        // Re-run under the key the sender sealed to, which need not be the one this client
        // last saw attested: the enclave re-keys, and a message may be read days later. The
        // receipt is what vouches for it: the provider records one only for a capsule the
        // enclave opened and scanned, and no other key and seed re-seal this image to the same
        // bytes (the seal's randomness is derived from the key, and the AEAD is keyed by it).
        let key = match v["scheme"]["enclave_key"].as_str() {
            Some(k) => seal::public_from_hex(k).map_err(refused)?,
            None => self.enclave_key,
        };
        let again = seal::seal_seeded(&key, INFO, blob.as_bytes(), image, &seed)
            .map_err(SchemeError::from)?;
        let path = format!(
            "/v1/scan/receipt/{}",
            scanlab_messenger::client::url_id(blob)?
        );
        let receipt = ctx
            .get(&path)
            .map_err(|e| refused(format!("the provider holds no scan of this image ({e})")))?;
        if receipt["sha256"].as_str() != Some(&hex::encode(Sha256::digest(&again))) {
            return Err(refused(
                "the image the enclave scanned is not the image received",
            ));
        }
        Ok(())
    }
}

/// S5's provider half: relays capsules, records verdicts, queues forwarded images, and keeps
/// the published attestation fresh.
pub struct Provider {
    link: EnclaveLink,
    attestation: Mutex<Attestation>,
    allow: Vec<String>,
}

impl Provider {
    /// Attaches to an enclave and fetches its attestation. An empty `allow` publishes that
    /// enclave's own measurement.
    pub fn new(link: EnclaveLink, allow: Vec<String>) -> Result<Provider, SchemeError> {
        let attestation = link.attestation()?;
        let allow = if allow.is_empty() {
            vec![attestation.measurement_hex()]
        } else {
            allow
        };
        Ok(Provider {
            link,
            attestation: Mutex::new(attestation),
            allow,
        })
    }

    /// The attestation to publish: refetched once half its lifetime has passed.
    fn current(&self) -> Attestation {
        let mut a = self.attestation.lock().unwrap_or_else(|p| p.into_inner());
        if now() >= a.issued.saturating_add(ATTESTATION_LIFETIME / 2)
            && let Ok(fresh) = self.link.attestation()
        {
            *a = fresh;
        }
        a.clone()
    }

    fn scan_inner(&self, ctx: &ScanCtx, r: EnclaveRequest) -> Result<ScanOutcome, SchemeError> {
        let capsule = b64_field(&json!({ "s": r.sealed }), "s")?;
        scanlab_messenger::client::url_id(&r.blob)
            .map_err(|e| SchemeError::Malformed(e.to_string()))?;
        let v = self.link.scan(&r.blob, &capsule)?;
        // The receipt recipients check: the digest of the capsule relayed for this blob. The
        // first scan of a blob wins: another account that learns the blob id (a recipient)
        // cannot replace it to make honest recipients refuse the image.
        let key = format!("receipt {}", r.blob);
        if ctx.state(&key)?.is_none() {
            ctx.set_state(&key, Sha256::digest(&capsule).to_vec())?;
        }
        if let (Some(m), Some(img)) = (&v.matched, &v.image) {
            let image = b64_field(&json!({ "i": img }), "i")?;
            let reason = v.reason.clone().unwrap_or_else(|| m.reason());
            ctx.submit_review("enclave", &r.blob, &reason, image)?;
        }
        Ok(ScanOutcome {
            reply: json!({ "disclose": false }),
            derived: Some(json!({ "blob": r.blob, "enclave_match": v.matched })),
        })
    }
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "enclave"
    }
    fn public_params(&self) -> Value {
        json!(Params {
            allow: self.allow.clone(),
            fresh: Fresh {
                attestation: self.current(),
            },
        })
    }
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        Ok(self.scan_inner(ctx, crate::device_hash::parse(request)?)?)
    }
    fn receipt(&self, ctx: &ScanCtx, blob: &str) -> Result<Option<Value>, ScanError> {
        Ok(ctx
            .state(&format!("receipt {blob}"))?
            .map(|d| json!({ "blob": blob, "sha256": hex::encode(d) })))
    }
}

/// Hex serde for fixed-size byte arrays.
mod hex_array {
    pub fn serialize<S: serde::Serializer, const N: usize>(
        b: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        use serde::Deserialize;
        let s = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanlab_messenger::client::{LocalTransport, Transport};

    fn enclave() -> Enclave {
        let m = Matcher::new(Default::default(), 31).unwrap();
        Enclave::new(m, [9; 32])
    }

    const T: u64 = 1_790_000_000;

    #[test]
    fn attestation_verifies_only_signed_fresh_and_accepted() {
        let e = enclave();
        let a = e.attest([5; 32], T);
        let allow = vec![a.measurement_hex()];
        assert_eq!(
            a.verify(&vendor_public(), &allow, T + 10).unwrap(),
            e.keys.public()
        );
        let refused = |a: &Attestation, allow: &[String], now: u64| {
            matches!(
                a.verify(&vendor_public(), allow, now),
                Err(SchemeError::Attestation(_))
            )
        };
        assert!(refused(&a, &["00".repeat(32)], T));
        assert!(refused(&a, &allow, T + ATTESTATION_LIFETIME), "expired");
        assert!(refused(&a, &allow, T - 3600), "from the future");
        let other = SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert!(a.verify(&other, &allow, T).is_err());
        // A provider swapping in its own key, or claiming another list or radius under the
        // same signature, breaks it: the measurement is recomputed from what is claimed.
        let mut swapped = a.clone();
        swapped.enclave_key = KeyPair::generate().public();
        assert!(refused(&swapped, &allow, T));
        let mut relisted = a.clone();
        relisted.measured.radius = 64;
        assert!(refused(&relisted, &[relisted.measurement_hex()], T));
        let mut extended = a.clone();
        extended.expires += ATTESTATION_LIFETIME;
        assert!(refused(&extended, &allow, T));
    }

    #[test]
    fn the_measurement_covers_code_list_and_radius() {
        let e = enclave();
        let m = *e.measured();
        let base = m.measurement();
        let mut code = m;
        code.code_sha256[0] ^= 1;
        let mut list = m;
        list.list.distinct += 1;
        let mut radius = m;
        radius.radius += 1;
        for changed in [code, list, radius] {
            assert_ne!(changed.measurement(), base);
        }
    }

    #[test]
    fn a_capsule_opens_only_in_the_enclave_for_its_blob() {
        let e = enclave();
        let key = e.attest([0; 32], T).enclave_key;
        let c = seal::seal(&key, INFO, b"blob-1", b"not an image").unwrap();
        assert!(matches!(e.scan("blob-1", &c), Err(SchemeError::Image(_))));
        assert!(matches!(e.scan("blob-2", &c), Err(SchemeError::Seal(_))));
        assert!(matches!(
            enclave().scan("blob-1", &c),
            Err(SchemeError::Seal(_))
        ));
    }

    #[test]
    fn only_the_caller_holding_the_token_may_scan() {
        let dir = tempfile::tempdir().unwrap();
        let (service, token) = EnclaveService::open(Arc::new(enclave()), dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CALLER_TOKEN_FILE)).unwrap(),
            *token
        );
        let key = service.enclave.keys.public();
        let capsule = seal::seal(&key, INFO, b"b", b"x").unwrap();
        let t = LocalTransport::from_router(router(service));
        let body = json!(EnclaveRequest {
            blob: "b".into(),
            sealed: b64(&capsule)
        });
        for wrong in [None, Some("0".repeat(64))] {
            let e = t
                .post("/scan", wrong.as_deref(), &body)
                .unwrap_err()
                .to_string();
            assert!(e.contains("401"), "{e}");
        }
        // With the token the request reaches the enclave (which then fails to decode "x").
        let e = t
            .post("/scan", Some(&token), &body)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("401") && e.contains("image"), "{e}");
    }
}
