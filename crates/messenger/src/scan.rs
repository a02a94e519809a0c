//! Where detection schemes plug into the messenger: a provider half ([`ProviderScheme`]) and a
//! client half ([`ClientScheme`]). The messenger itself has no detection (scheme S0); the
//! `scanlab-schemes` crate implements these traits, one file per scheme.
//!
//! # Protocol
//! - `GET /v1/scheme` → `{name, params}`: clients learn the deployment's scheme and its public
//!   parameters (list radius, escrow key, enclave attestation and allow-list, ...).
//! - On sending an image, after the encrypted blob is uploaded and before the MLS message is
//!   sent, the client half may produce a scan request: `POST /v1/scan {blob, ...}` → a reply
//!   the provider half decides. If the reply has `"disclose": true`, the (honest) client uploads
//!   the plaintext image to the review queue: `POST /v1/review {blob, reason, image}`.
//! - Each message may carry scheme fields: `POST /v1/messages {..., scheme}` (S2's escrow).
//!
//! Everything here reaches the provider through the recorded routes, so it lands in the provider
//! view; what a provider half derives (a hash, a match, a decrypted digest) is recorded too, as
//! `DERIVED` rows ([`ScanOutcome::derived`]).

use crate::commit::Db;
use crate::mls::AttachmentRef;
use crate::provider::ApiError;
use crate::store::{Review, StoreError};
use serde_json::Value;

/// What a provider half may use while scanning: who asked, the blob store, and the review
/// queue. Its calls block (scans run on a blocking thread).
pub struct ScanCtx {
    pub(crate) db: Db,
    pub(crate) who: String,
}

impl ScanCtx {
    /// The authenticated account that sent the scan request.
    pub fn who(&self) -> &str {
        &self.who
    }

    /// A stored blob (S1 decrypts attachments at the provider).
    pub fn blob(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = id.to_string();
        self.db.call_blocking(move |s| s.get_blob(&id))
    }

    /// Puts an image in the provider's review queue (S1, and S5's enclave forwarding). It is
    /// recorded in the provider view too, as `INTERNAL review` from `submitter` (length and
    /// digest, like blobs), so images that reach the provider from a third party such as an
    /// enclave are in the view like everything else.
    pub fn submit_review(
        &self,
        submitter: &str,
        blob: &str,
        reason: &str,
        image: Vec<u8>,
    ) -> Result<i64, StoreError> {
        use sha2::Digest;
        let record = crate::store::ViewRecord {
            seq: 0,
            at_ms: crate::provider::now_ms(),
            who: Some(submitter.to_string()),
            endpoint: "INTERNAL review".into(),
            len: image.len() as i64,
            sha256: hex::encode(sha2::Sha256::digest(&image)),
            body: None,
            extra: Some(serde_json::json!({ "blob": blob, "reason": reason }).to_string()),
        };
        self.db.call_blocking(move |s| s.record(&record))?;
        let item = Review {
            id: 0,
            at_ms: crate::provider::now_ms(),
            submitter: submitter.to_string(),
            blob: blob.to_string(),
            reason: reason.to_string(),
            image,
        };
        self.db.call_blocking(move |s| s.put_review(&item))
    }
}

/// A provider half's answer to a scan request.
pub struct ScanOutcome {
    /// Sent back to the client. `{"disclose": true, "reason": ...}` asks it to upload the
    /// plaintext image for review.
    pub reply: Value,
    /// What the provider derived and now knows (recorded as a `DERIVED` provider-view row).
    pub derived: Option<Value>,
}

/// The provider half of a detection scheme.
pub trait ProviderScheme: Send + Sync + 'static {
    /// The scheme's name, as `scanlab serve --scheme` takes it.
    fn name(&self) -> &str;
    /// Public parameters for clients (`GET /v1/scheme`).
    fn public_params(&self) -> Value;
    /// Handles `POST /v1/scan`.
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ApiError>;
    /// Checks a message's scheme fields; returns what it derived from them.
    fn on_message(&self, _who: &str, _fields: Option<&Value>) -> Result<Option<Value>, ApiError> {
        Ok(None)
    }
    /// Checks an image a client discloses for review.
    fn on_review(&self, _who: &str, _reason: &str, _image: &[u8]) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The client half of a detection scheme. It runs on the device, before encryption on send.
pub trait ClientScheme: Send {
    /// The scheme's name; must equal what the provider announces.
    fn name(&self) -> &str;
    /// Called for each image about to be sent, after its encrypted blob is uploaded: the body
    /// of a `POST /v1/scan`, or `None` to send nothing.
    fn scan_request(
        &mut self,
        image: &[u8],
        attachment: &AttachmentRef,
    ) -> Result<Option<Value>, crate::client::ClientError>;
    /// Called for each application message with its plaintext, before encryption: fields to
    /// send beside the ciphertext, or `None`.
    fn message_fields(
        &mut self,
        _chat: &str,
        _plaintext: &[u8],
    ) -> Result<Option<Value>, crate::client::ClientError> {
        Ok(None)
    }
}
