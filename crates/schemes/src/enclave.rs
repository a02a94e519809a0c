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
use crate::{Matcher, SchemeError, b64, b64_field, field};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::AttachmentRef;
use scanlab_messenger::provider::ApiError;
use scanlab_messenger::scan::{ClientScheme, ProviderScheme, ScanCtx, ScanOutcome};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
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
    keys: KeyPair,
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
            keys,
            matcher,
        }
    }

    /// The attestation.
    pub fn attestation(&self) -> &Attestation {
        &self.attestation
    }

    /// Opens a capsule without scanning it: what anyone holding the enclave's key (a
    /// compromised enclave, a side-channel leak) reads. The evaluation's compromise analysis
    /// uses it.
    pub fn open_for_audit(&self, blob: &str, capsule: &[u8]) -> Result<Vec<u8>, SchemeError> {
        Ok(self.keys.open(INFO, blob.as_bytes(), capsule)?.to_vec())
    }

    /// Opens, hashes and matches one sealed image.
    pub fn scan(&self, blob: &str, capsule: &[u8]) -> Result<Verdict, SchemeError> {
        let image = self.keys.open(INFO, blob.as_bytes(), capsule)?;
        let pdq = crate::pdq_of(&image)?;
        let matched = self.matcher.check(&pdq.hash);
        Ok(Verdict {
            image: matched.is_some().then(|| b64(&image)),
            matched,
        })
    }
}

/// The enclave's HTTP interface, for `scanlab enclave`: `GET /attestation`, and
/// `POST /scan {blob, sealed}` → [`Verdict`].
pub fn router(enclave: Arc<Enclave>) -> axum::Router {
    use axum::routing::{get, post};
    async fn attestation(
        axum::extract::State(e): axum::extract::State<Arc<Enclave>>,
    ) -> axum::Json<Attestation> {
        axum::Json(e.attestation.clone())
    }
    async fn scan(
        axum::extract::State(e): axum::extract::State<Arc<Enclave>>,
        axum::Json(req): axum::Json<Value>,
    ) -> Result<axum::Json<Verdict>, (axum::http::StatusCode, String)> {
        let bad = |e: SchemeError| (axum::http::StatusCode::BAD_REQUEST, e.to_string());
        let blob = field(&req, "blob").map_err(bad)?.to_string();
        let capsule = b64_field(&req, "sealed").map_err(bad)?;
        tokio::task::spawn_blocking(move || e.scan(&blob, &capsule))
            .await
            .map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map(axum::Json)
            .map_err(bad)
    }
    axum::Router::new()
        .route("/attestation", get(attestation))
        .route("/scan", post(scan))
        .with_state(enclave)
}

/// How the provider reaches its enclave.
#[derive(Clone)]
pub enum EnclaveLink {
    /// In the same process (simulations).
    Local(Arc<Enclave>),
    /// A separate `scanlab enclave` process, by base URL.
    Http(String),
}

/// Runs a blocking HTTP call on its own thread, so it is safe from async code too.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| s.spawn(f).join().expect("HTTP thread panicked"))
}

impl EnclaveLink {
    /// The enclave's attestation.
    pub fn attestation(&self) -> Result<Attestation, SchemeError> {
        match self {
            EnclaveLink::Local(e) => Ok(e.attestation.clone()),
            EnclaveLink::Http(url) => off_runtime(|| {
                reqwest::blocking::get(format!("{url}/attestation"))
                    .and_then(|r| r.error_for_status())
                    .and_then(|r| r.json())
                    .map_err(|e| SchemeError::Enclave(e.to_string()))
            }),
        }
    }

    /// Sends one capsule for scanning.
    pub fn scan(&self, blob: &str, capsule: &[u8]) -> Result<Verdict, SchemeError> {
        match self {
            EnclaveLink::Local(e) => e.scan(blob, capsule),
            EnclaveLink::Http(url) => off_runtime(|| {
                reqwest::blocking::Client::new()
                    .post(format!("{url}/scan"))
                    .json(&json!({ "blob": blob, "sealed": b64(capsule) }))
                    .send()
                    .map_err(|e| SchemeError::Enclave(e.to_string()))
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

/// S5's client half: verified the attestation once, seals every image to the enclave.
pub struct Client {
    enclave_key: [u8; 32],
}

impl Client {
    /// Verifies the attestation the provider announces against the vendor key the client
    /// ships with and the provider's allow-list.
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        let att: Attestation = serde_json::from_value(params["attestation"].clone())
            .map_err(|e| SchemeError::Attestation(format!("malformed: {e}")))?;
        let allow: Vec<String> = serde_json::from_value(params["allow"].clone())
            .map_err(|e| SchemeError::Attestation(format!("malformed allow-list: {e}")))?;
        Ok(Client {
            enclave_key: att.verify(&vendor_public(), &allow)?,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "enclave"
    }
    fn scan_request(
        &mut self,
        image: &[u8],
        attachment: &AttachmentRef,
    ) -> Result<Option<Value>, ClientError> {
        let capsule = seal::seal(&self.enclave_key, INFO, attachment.blob.as_bytes(), image)
            .map_err(SchemeError::from)?;
        Ok(Some(
            json!({ "blob": attachment.blob, "sealed": b64(&capsule) }),
        ))
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

    fn scan_inner(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, SchemeError> {
        let blob = field(request, "blob")?;
        let capsule = b64_field(request, "sealed")?;
        let v = self.link.scan(blob, &capsule)?;
        if let (Some(m), Some(img)) = (&v.matched, &v.image) {
            let image = b64_field(&json!({ "i": img }), "i")?;
            ctx.submit_review("enclave", blob, &m.reason(), image)?;
        }
        Ok(ScanOutcome {
            reply: json!({ "disclose": false }),
            derived: Some(json!({ "blob": blob, "enclave_match": v.matched })),
        })
    }
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "enclave"
    }
    fn public_params(&self) -> Value {
        json!({ "attestation": self.attestation, "allow": self.allow })
    }
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ApiError> {
        Ok(self.scan_inner(ctx, request)?)
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
