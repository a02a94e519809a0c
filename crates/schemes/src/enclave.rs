//! S5 `enclave`: the Commission paper's shortlisted "secure enclave in the ESP server", as a
//! **simulated** trusted execution environment.
//!
//! # Protocol
//! 1. **The enclave** (`scanlab enclave`, a separate process; or [`Enclave`] in process for
//!    simulations) generates an HPKE key pair at start and never lets the secret out. Its
//!    **measurement** is `SHA-256("scanlab-enclave-measurement-v1" ‖ SHA-256(code) ‖
//!    SHA-256(config))`, where `code` is its binary and `config` the list digest and radius
//!    it runs with. Its **attestation** is an Ed25519 signature by the (simulated) hardware
//!    vendor over `"scanlab-attestation-v1" ‖ measurement ‖ enclave public key`.
//! 2. **The provider** publishes, at `GET /v1/scheme`, the enclave's attestation and an
//!    **allow-list** of measurements it says clients should accept.
//! 3. **The client** checks the vendor signature with the vendor key it ships with, and that
//!    the measurement is on the allow-list; only then does it seal each image to the enclave:
//!    `HPKE.Seal(enclave_pk, info = "scanlab-enclave-v1", aad = blob id, image)`.
//! 4. **The provider** relays the capsule to the enclave, which opens it, hashes it (PDQ),
//!    matches it against its list, and returns a verdict. On a match — and only then — the
//!    verdict carries the image, and the provider puts it in its review queue (submitter
//!    `enclave`). The provider learns the verdict bit for every image.
//!
//! # What the simulation models, and what it cannot
//! - **Modelled:** attestation as a signed code measurement; key custody (the enclave's secret
//!   key exists only in the enclave process); who controls the allow-list (the provider, who
//!   can add any measurement, including an enclave with another list or another purpose);
//!   that the list is part of the measured configuration; and exactly what crosses each
//!   boundary (recorded in the provider view).
//! - **Not modelled:** hardware isolation. Here the enclave is an ordinary process that its
//!   operator can read; the vendor key is a fixed, published test key ([`vendor_key`]), so
//!   anyone can forge an attestation. Side channels (cache timing, power, speculative
//!   execution), which have repeatedly broken SGX, and vendor compromise are outside it too.
//!   The simulation shows what the design *promises* under its own assumptions, and where
//!   those assumptions sit.

use crate::seal::{self, KeyPair};
use crate::{Matcher, Party, Scheme, SchemeError, Secret, SimInputs, Simulation, b64, b64_field};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use scanlab_messenger::client::{ClientError, LocalTransport, Transport};
use scanlab_messenger::commit::Db;
use scanlab_messenger::record::{Pending, Recorded};
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use scanlab_messenger::{SqliteStore, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// HPKE `info` of image capsules to the enclave.
pub const INFO: &[u8] = b"scanlab-enclave-v1";
const ATTEST_CONTEXT: &[u8] = b"scanlab-attestation-v1";
const MEASURE_CONTEXT: &[u8] = b"scanlab-enclave-measurement-v1";

/// The simulated hardware vendor's signing key. It is derived from a published string, so it
/// is no secret: see the module docs.
pub fn vendor_key() -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(b"scanlab simulated TEE vendor key v1").into())
}

/// The vendor's public key, which clients ship with.
pub fn vendor_public() -> VerifyingKey {
    vendor_key().verifying_key()
}

/// The measurement of an enclave running `code_digest` (SHA-256 of its binary) with `config`.
pub fn measurement(code_digest: &[u8; 32], config: &Value) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(MEASURE_CONTEXT);
    h.update(code_digest);
    h.update(Sha256::digest(config.to_string().as_bytes()));
    h.finalize().into()
}

/// SHA-256 of the running binary: the code an enclave process measures.
pub fn own_code_digest() -> [u8; 32] {
    std::env::current_exe()
        .and_then(std::fs::read)
        .map(|b| Sha256::digest(&b).into())
        .unwrap_or([0; 32])
}

/// A signed statement of what runs in the enclave and which key it holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attestation {
    /// The measurement, hex.
    pub measurement: String,
    /// The enclave's HPKE public key, hex.
    pub enclave_key: String,
    /// The enclave's configuration as measured (list digest, radius).
    pub config: Value,
    /// The vendor's Ed25519 signature, hex.
    pub signature: String,
}

impl Attestation {
    fn signed_bytes(measurement: &[u8], key: &[u8]) -> Vec<u8> {
        [ATTEST_CONTEXT, measurement, key].concat()
    }

    /// Checks the vendor signature and that the measurement is on `allow`; returns the
    /// enclave's public key to seal to.
    pub fn verify(&self, vendor: &VerifyingKey, allow: &[String]) -> Result<[u8; 32], SchemeError> {
        let bad = |m: &str| SchemeError::Attestation(m.to_string());
        let m: [u8; 32] = hex::decode(&self.measurement)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("measurement is not 32 bytes of hex"))?;
        let key = seal::public_from_hex(&self.enclave_key)?;
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("signature is not 64 bytes of hex"))?;
        vendor
            .verify(&Self::signed_bytes(&m, &key), &Signature::from_bytes(&sig))
            .map_err(|_| bad("the vendor's signature does not verify"))?;
        if !allow
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&self.measurement))
        {
            return Err(bad("the measurement is not on the provider's allow-list"));
        }
        Ok(key)
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
}

/// The enclave: its key, its list, and its attestation.
pub struct Enclave {
    keys: Arc<KeyPair>,
    matcher: Matcher,
    attestation: Attestation,
}

impl Enclave {
    /// Starts an enclave over `matcher`, measuring `code_digest` and the list.
    pub fn new(matcher: Matcher, list_digest: [u8; 32], code_digest: [u8; 32]) -> Enclave {
        let keys = KeyPair::generate();
        let config = json!({ "list_sha256": hex::encode(list_digest), "radius": matcher.radius() });
        let m = measurement(&code_digest, &config);
        let sig = vendor_key().sign(&Attestation::signed_bytes(&m, &keys.public()));
        Enclave {
            attestation: Attestation {
                measurement: hex::encode(m),
                enclave_key: hex::encode(keys.public()),
                config,
                signature: hex::encode(sig.to_bytes()),
            },
            keys: Arc::new(keys),
            matcher,
        }
    }

    /// The attestation.
    pub fn attestation(&self) -> &Attestation {
        &self.attestation
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
        let pdq = crate::pdq_of(&image)?;
        let matched = self.matcher.check(&pdq.hash);
        let derived = json!({ "blob": blob, "hash": pdq.hash.to_string(), "match": matched });
        Ok((
            Verdict {
                image: matched.is_some().then(|| b64(&image)),
                matched,
            },
            derived,
        ))
    }
}

/// The enclave as a recorded service: every request it receives and every answer it gives,
/// and what it derives, land in its own view (`DIR/enclave.sqlite`).
pub struct EnclaveService {
    enclave: Arc<Enclave>,
    db: Db,
}

impl EnclaveService {
    /// The enclave recording into `data`.
    pub fn open(enclave: Arc<Enclave>, data: &Path) -> Result<Arc<EnclaveService>, SchemeError> {
        Ok(Arc::new(EnclaveService {
            enclave,
            db: Db::start(Box::new(SqliteStore::open_party(data, "enclave")?)),
        }))
    }
}

impl Recorded for EnclaveService {
    fn db(&self) -> &Db {
        &self.db
    }
    fn body_limit(&self, _path: &str) -> usize {
        64 << 20
    }
    // It authenticates nobody (its one caller is the provider), so its public limit is its
    // only limit.
    fn public_body_limit(&self) -> usize {
        64 << 20
    }
    async fn who(&self, _: &axum::http::request::Parts) -> Result<Option<String>, StoreError> {
        // Its one caller is the provider; it does not authenticate it.
        Ok(None)
    }
}

/// The enclave's HTTP interface, for `scanlab enclave`: `GET /attestation`, and
/// `POST /scan {blob, sealed}` → [`Verdict`], behind the recording layer.
pub fn router(service: Arc<EnclaveService>) -> axum::Router {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    async fn attestation(State(s): State<Arc<EnclaveService>>) -> axum::Json<Attestation> {
        axum::Json(s.enclave.attestation.clone())
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

/// How the provider reaches its enclave.
#[derive(Clone)]
pub enum EnclaveLink {
    /// In the same process (simulations), through the enclave's own router and recording
    /// layer, minus the socket.
    Local(Arc<LocalTransport>),
    /// A separate `scanlab enclave` process, by base URL.
    Http(String),
}

/// Runs a blocking HTTP call on its own thread, so it is safe from async code too.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| s.spawn(f).join().expect("HTTP thread panicked"))
}

impl EnclaveLink {
    /// An in-process link to `service`.
    pub fn local(service: Arc<EnclaveService>) -> EnclaveLink {
        EnclaveLink::Local(Arc::new(LocalTransport::from_router(router(service))))
    }

    /// The enclave's attestation.
    pub fn attestation(&self) -> Result<Attestation, SchemeError> {
        match self {
            EnclaveLink::Local(t) => serde_json::from_value(
                t.get("/attestation", None)
                    .map_err(|e| SchemeError::Enclave(e.to_string()))?,
            )
            .map_err(|e| SchemeError::Enclave(e.to_string())),
            EnclaveLink::Http(url) => off_runtime(|| {
                reqwest::blocking::get(format!("{url}/attestation"))
                    .map_err(|e| SchemeError::EnclaveUnreachable(e.to_string()))?
                    .error_for_status()
                    .and_then(|r| r.json())
                    .map_err(|e| SchemeError::Enclave(e.to_string()))
            }),
        }
    }

    /// Sends one capsule for scanning.
    pub fn scan(&self, blob: &str, capsule: &[u8]) -> Result<Verdict, SchemeError> {
        let req = EnclaveRequest {
            blob: blob.to_string(),
            sealed: b64(capsule),
        };
        match self {
            EnclaveLink::Local(t) => serde_json::from_value(
                t.post("/scan", None, &json!(req))
                    .map_err(|e| SchemeError::Enclave(e.to_string()))?,
            )
            .map_err(|e| SchemeError::Enclave(e.to_string())),
            EnclaveLink::Http(url) => off_runtime(|| {
                reqwest::blocking::Client::new()
                    .post(format!("{url}/scan"))
                    .json(&req)
                    .send()
                    .map_err(|e| SchemeError::EnclaveUnreachable(e.to_string()))
                    .and_then(|r| {
                        if r.status().is_success() {
                            r.json().map_err(|e| SchemeError::Enclave(e.to_string()))
                        } else {
                            Err(SchemeError::Enclave(format!(
                                "{}: {}",
                                r.status(),
                                r.text().unwrap_or_default()
                            )))
                        }
                    })
            }),
        }
    }
}

/// S5's descriptor.
pub struct EnclaveScheme;

/// S5's configuration: where the enclave is, and the allow-list the provider publishes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of a running `scanlab enclave`.
    pub enclave: String,
    /// Measurements (hex) clients should accept; empty means the attached enclave's own.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// The parameters clients download.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// The enclave's attestation.
    pub attestation: Attestation,
    /// The provider's allow-list of measurements.
    pub allow: Vec<String>,
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
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        Ok(Arc::new(Provider::new(
            EnclaveLink::Http(c.enclave.trim_end_matches('/').to_string()),
            c.allow,
        )?))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client::from_params(params)?))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let digest = Sha256::digest(inputs.list.to_csv().as_bytes()).into();
        let e = Arc::new(Enclave::new(
            Matcher::new(inputs.list.clone(), crate::DEFAULT_RADIUS)?,
            digest,
            own_code_digest(),
        ));
        let data = inputs.dir.join("enclave");
        let service = EnclaveService::open(e.clone(), &data)?;
        Ok(Simulation {
            provider: Arc::new(Provider::new(EnclaveLink::local(service), Vec::new())?),
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

/// S5's client half: verified the attestation once, seals every image to the enclave.
pub struct Client {
    enclave_key: [u8; 32],
}

impl Client {
    /// Verifies the attestation the provider announces against the vendor key the client
    /// ships with and the provider's allow-list.
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        let p: Params = serde_json::from_value(params.clone())
            .map_err(|e| SchemeError::Attestation(format!("malformed: {e}")))?;
        Ok(Client {
            enclave_key: p.attestation.verify(&vendor_public(), &p.allow)?,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "enclave"
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        let blob = &a.attachment.blob;
        let capsule = seal::seal(&self.enclave_key, INFO, blob.as_bytes(), a.bytes)
            .map_err(SchemeError::from)?;
        Ok(ScanAction::Request(json!(EnclaveRequest {
            blob: blob.clone(),
            sealed: b64(&capsule),
        })))
    }
}

/// S5's provider half: relays capsules, records verdicts, queues forwarded images.
pub struct Provider {
    link: EnclaveLink,
    attestation: Attestation,
    allow: Vec<String>,
}

impl Provider {
    /// Attaches to an enclave and fetches its attestation. An empty `allow` publishes that
    /// enclave's own measurement.
    pub fn new(link: EnclaveLink, allow: Vec<String>) -> Result<Provider, SchemeError> {
        let attestation = link.attestation()?;
        let allow = if allow.is_empty() {
            vec![attestation.measurement.clone()]
        } else {
            allow
        };
        Ok(Provider {
            link,
            attestation,
            allow,
        })
    }

    fn scan_inner(&self, ctx: &ScanCtx, r: EnclaveRequest) -> Result<ScanOutcome, SchemeError> {
        let capsule = b64_field(&json!({ "s": r.sealed }), "s")?;
        let v = self.link.scan(&r.blob, &capsule)?;
        if let (Some(m), Some(img)) = (&v.matched, &v.image) {
            let image = b64_field(&json!({ "i": img }), "i")?;
            ctx.submit_review("enclave", &r.blob, &m.reason(), image)?;
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
            attestation: self.attestation.clone(),
            allow: self.allow.clone(),
        })
    }
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        Ok(self.scan_inner(ctx, crate::device_hash::parse(request)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enclave() -> Enclave {
        let m = Matcher::new(Default::default(), 31).unwrap();
        Enclave::new(m, [7; 32], [9; 32])
    }

    #[test]
    fn attestation_verifies_only_with_the_vendor_key_and_an_allowed_measurement() {
        let e = enclave();
        let a = e.attestation().clone();
        let allow = vec![a.measurement.clone()];
        assert_eq!(a.verify(&vendor_public(), &allow).unwrap(), e.keys.public());
        assert!(matches!(
            a.verify(&vendor_public(), &["00".repeat(32)]),
            Err(SchemeError::Attestation(_))
        ));
        let other = SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert!(a.verify(&other, &allow).is_err());
        // A provider swapping in its own key breaks the signature.
        let mut swapped = a.clone();
        swapped.enclave_key = hex::encode(KeyPair::generate().public());
        assert!(swapped.verify(&vendor_public(), &allow).is_err());
    }

    #[test]
    fn a_capsule_opens_only_in_the_enclave_for_its_blob() {
        let e = enclave();
        let key = seal::public_from_hex(&e.attestation().enclave_key).unwrap();
        let c = seal::seal(&key, INFO, b"blob-1", b"not an image").unwrap();
        assert!(matches!(e.scan("blob-1", &c), Err(SchemeError::Image(_))));
        assert!(matches!(e.scan("blob-2", &c), Err(SchemeError::Seal(_))));
        assert!(matches!(
            enclave().scan("blob-1", &c),
            Err(SchemeError::Seal(_))
        ));
    }
}
