//! Where detection schemes plug into the messenger: a provider half ([`ProviderScheme`]) and a
//! client half ([`ClientScheme`]). The messenger itself has no detection (scheme S0); the
//! `scanlab-schemes` crate implements these traits, one file per scheme.
//!
//! # Protocol
//! - `GET /v1/scheme` → `{name, params}`: clients learn the deployment's scheme and its public
//!   parameters (list radius, escrow key, enclave attestation and allow-list, ...).
//! - On sending an attachment, after its encrypted blob is uploaded and before the MLS message
//!   is sent, the client half decides ([`ClientScheme::on_attachment`], a [`ScanAction`]):
//!   nothing; a scan request, `POST /v1/scan {...}` → a reply the provider half decides, which
//!   the client half reads ([`ClientScheme::on_scan_reply`]) to decide whether to disclose; or
//!   to disclose at once (a list on the device). Disclosure is
//!   `POST /v1/review {blob, reason, image}`.
//! - Each message may carry scheme fields ([`ClientScheme::message_fields`]):
//!   `POST /v1/messages {..., scheme}`; the provider half checks them
//!   ([`ProviderScheme::on_message`]) and they are delivered to the recipients with the
//!   ciphertext, whose client half sees them after decryption ([`ClientScheme::on_receive`]).
//! - Scheme messages not tied to one image ([`ClientScheme::outbox`], such as threshold-share
//!   vouchers) go to `POST /v1/scheme/message` ([`ProviderScheme::on_scheme_message`]).
//! - A recipient reports a message ([`ClientScheme::report`]) to `POST /v1/report`
//!   ([`ProviderScheme::on_report`]).
//!
//! Both halves keep durable state scoped to their scheme: the client in its SQLite home
//! ([`ClientCtx::state`]), the provider in its store ([`ScanCtx::state`]), where every write is
//! recorded in the provider view as a `state` row.
//!
//! Everything here reaches the provider through the recorded routes, so it lands in the provider
//! view; what a provider half derives (a hash, a match, a decrypted digest) is recorded too, as
//! `derived` rows with their true length and digest, in the same transaction as the request.

use crate::commit::Db;
use crate::mls::{AttachmentRef, Media};
use crate::record::Pending;
use crate::store::{RecordKind, Review, StoreError, ViewRecord};
use axum::http::StatusCode;
use serde_json::Value;

/// Why a scheme's provider half failed; the HTTP status follows the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The request is malformed (a bad field, an undecodable image, a capsule that does not
    /// open): 400.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The request is well formed but the scheme refuses it (a replayed share, a forged
    /// report): 422.
    #[error("refused: {0}")]
    Refused(String),
    /// The scheme has no such operation: 404.
    #[error("this scheme has no such operation")]
    Unsupported,
    /// A party the scheme depends on (an enclave, a matcher) cannot be reached: 503.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A party the scheme depends on answered with an error: 502.
    #[error("upstream: {0}")]
    Upstream(String),
    /// Storage failed: 500.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scheme itself is broken or misconfigured: 500.
    #[error("internal: {0}")]
    Internal(String),
}

impl ScanError {
    /// The HTTP status of this cause.
    pub fn status(&self) -> StatusCode {
        match self {
            ScanError::Malformed(_) => StatusCode::BAD_REQUEST,
            ScanError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ScanError::Unsupported => StatusCode::NOT_FOUND,
            ScanError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ScanError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ScanError::Store(_) | ScanError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What a provider half may use while handling one request: who asked, the blob store, the
/// review queue, its durable state, and the record of what it derives. Every write goes
/// through the recorder, in one transaction with the request's own record. Its calls block
/// (hooks run on a blocking thread).
pub struct ScanCtx {
    pub(crate) db: Db,
    pub(crate) who: String,
    pub(crate) scheme: String,
    pub(crate) pending: Pending,
    pub(crate) endpoint: String,
}

impl ScanCtx {
    /// The authenticated account that sent the request.
    pub fn who(&self) -> &str {
        &self.who
    }

    /// A stored blob (S1 decrypts attachments at the provider).
    pub fn blob(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = id.to_string();
        self.db.call_blocking(move |s| s.get_blob(&id))
    }

    /// Records what the provider half derived (a hash, a verdict): a `derived` row with the
    /// value's true length and digest, written with the request's next write.
    pub fn derive(&self, value: &Value) {
        self.pending.stage(crate::record::derived(
            Some(self.who.clone()),
            &self.endpoint,
            value,
        ));
    }

    /// The identity key the provider registered for `name`.
    pub fn identity_key(&self, name: &str) -> Result<Option<[u8; 32]>, StoreError> {
        let name = name.to_string();
        self.db.call_blocking(move |s| s.identity_key(&name))
    }

    /// Puts an image in the provider's review queue (S1, and S5's enclave forwarding). It is
    /// recorded in the provider view too, as an `internal` row from `submitter` (length and
    /// digest, like blobs), so images that reach the provider from a third party such as an
    /// enclave are in the view like everything else.
    pub fn submit_review(
        &self,
        submitter: &str,
        blob: &str,
        reason: &str,
        image: Vec<u8>,
    ) -> Result<i64, StoreError> {
        let mut record = ViewRecord::of(
            RecordKind::Internal,
            Some(submitter.to_string()),
            "review",
            &image,
            false,
        );
        record.extra = Some(serde_json::json!({ "blob": blob, "reason": reason }).to_string());
        self.pending.stage(record);
        let item = Review {
            id: 0,
            at_ms: crate::provider::now_ms(),
            submitter: submitter.to_string(),
            blob: blob.to_string(),
            reason: reason.to_string(),
            image,
        };
        self.pending
            .write_with_blocking(&self.db, move |s| s.put_review(&item))
    }

    /// The scheme's durable state under `key` (scoped to the deployed scheme).
    pub fn state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (scheme, key) = (self.scheme.clone(), key.to_string());
        self.db.call_blocking(move |s| s.state(&scheme, &key))
    }

    /// Sets the scheme's durable state under `key`. Recorded as a `state` row (the value is
    /// provider knowledge), in the same transaction as the request that caused it.
    pub fn set_state(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let mut r = ViewRecord::of(
            RecordKind::State,
            Some(self.who.clone()),
            &format!("{} {key}", self.scheme),
            &value,
            true,
        );
        r.extra = Some(serde_json::json!({ "for": self.endpoint }).to_string());
        self.pending.stage(r);
        let (scheme, key) = (self.scheme.clone(), key.to_string());
        self.pending
            .write_with_blocking(&self.db, move |s| s.set_state(&scheme, &key, &value))
    }
}

/// A provider half's answer to a request.
pub struct ScanOutcome {
    /// Sent back to the client.
    pub reply: Value,
    /// What the provider derived and now knows (recorded as a `derived` provider-view row).
    pub derived: Option<Value>,
}

/// The provider half of a detection scheme. Every hook but [`ProviderScheme::public_params`]
/// runs on a blocking thread, with a [`ScanCtx`] for the request.
pub trait ProviderScheme: Send + Sync + 'static {
    /// The scheme's name, as `scanlab serve --scheme` takes it.
    fn name(&self) -> &str;
    /// Public parameters for clients (`GET /v1/scheme`).
    fn public_params(&self) -> serde_json::Value;
    /// Handles `POST /v1/scan`.
    fn scan(&self, _ctx: &ScanCtx, _request: &Value) -> Result<ScanOutcome, ScanError> {
        Err(ScanError::Unsupported)
    }
    /// Checks a message's scheme fields; returns what it derived from them.
    fn on_message(&self, _ctx: &ScanCtx, _m: &IncomingMessage) -> Result<Option<Value>, ScanError> {
        Ok(None)
    }
    /// Answers `GET /v1/scan/receipt/{blob}`: what was scanned for `blob`, for recipients to
    /// check against what they received. `None` is a 404.
    fn receipt(&self, _ctx: &ScanCtx, _blob: &str) -> Result<Option<Value>, ScanError> {
        Ok(None)
    }
    /// Checks an image a client discloses for review.
    fn on_review(&self, _ctx: &ScanCtx, _reason: &str, _image: &[u8]) -> Result<(), ScanError> {
        Ok(())
    }
    /// Handles `POST /v1/scheme/message`: a scheme message not tied to one image.
    fn on_scheme_message(&self, _ctx: &ScanCtx, _body: &Value) -> Result<ScanOutcome, ScanError> {
        Err(ScanError::Unsupported)
    }
    /// Handles `POST /v1/report`: a recipient reports a message.
    fn on_report(&self, _ctx: &ScanCtx, _report: &Value) -> Result<ScanOutcome, ScanError> {
        Err(ScanError::Unsupported)
    }
    /// The provider's stamp on a message it accepts (after [`ProviderScheme::on_message`]),
    /// delivered to the recipients with it under `stamp` in its fields, in place of anything
    /// the sender put there (S9's franking: the provider binds the sender's tag to sender,
    /// chat and time). `accepted_ms` is the time the provider accepts it. The stamp is
    /// recorded as derived.
    fn stamp(
        &self,
        _ctx: &ScanCtx,
        _m: &IncomingMessage,
        _accepted_ms: u64,
    ) -> Result<Option<Value>, ScanError> {
        Ok(None)
    }
}

/// What a client half may use: its account name and its durable state, scoped to its scheme
/// and kept in the client's SQLite home, so a per-device secret survives restarts.
pub struct ClientCtx<'a> {
    pub(crate) db: &'a rusqlite::Connection,
    pub(crate) scheme: &'a str,
    pub(crate) account: &'a str,
    pub(crate) identity: &'a ed25519_dalek::SigningKey,
    pub(crate) get: &'a dyn Fn(&str) -> Result<Value, crate::client::ClientError>,
}

/// Context of every signature a scheme makes with the account's identity key: the scheme
/// cannot produce a login signature or a credential, whatever bytes it signs.
const SCHEME_SIG_CONTEXT: &[u8] = b"scanlab-scheme-signature-v1";

fn scheme_signed(scheme: &str, message: &[u8]) -> Vec<u8> {
    let mut m = SCHEME_SIG_CONTEXT.to_vec();
    m.extend_from_slice(&(scheme.len() as u32).to_be_bytes());
    m.extend_from_slice(scheme.as_bytes());
    m.extend_from_slice(message);
    m
}

/// The signature [`ClientCtx::sign`] makes in scheme `scheme` with `key`: what anyone holding
/// an account's key (or a key logged for it) can produce, so a verifier's trust rests on
/// which key it accepts.
pub fn scheme_signature(key: &ed25519_dalek::SigningKey, scheme: &str, message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    key.sign(&scheme_signed(scheme, message)).to_bytes()
}

/// Verifies a signature made by [`ClientCtx::sign`] in scheme `scheme` under the identity key
/// `key` (strict Ed25519).
pub fn verify_scheme_signature(
    key: &[u8; 32],
    scheme: &str,
    message: &[u8],
    signature: &[u8; 64],
) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(key).is_ok_and(|k| {
        k.verify_strict(
            &scheme_signed(scheme, message),
            &ed25519_dalek::Signature::from_bytes(signature),
        )
        .is_ok()
    })
}

impl ClientCtx<'_> {
    /// This device's account name.
    pub fn account(&self) -> &str {
        self.account
    }

    /// `GET path` at the provider, as this account (for example a scan receipt).
    pub fn get(&self, path: &str) -> Result<Value, crate::client::ClientError> {
        (self.get)(path)
    }

    /// Signs `message` with the account's identity key, under a context naming the scheme
    /// (see [`verify_scheme_signature`]).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        scheme_signature(self.identity, self.scheme, message)
    }

    /// The scheme's state under `key`.
    pub fn state(&self, key: &str) -> Result<Option<Vec<u8>>, crate::client::ClientError> {
        use rusqlite::OptionalExtension;
        self.db
            .query_row(
                "SELECT value FROM scheme_state WHERE scheme = ?1 AND key = ?2",
                [self.scheme, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| crate::client::ClientError::State(e.to_string()))
    }

    /// Sets the scheme's state under `key`.
    pub fn set_state(&self, key: &str, value: &[u8]) -> Result<(), crate::client::ClientError> {
        self.db
            .execute(
                "INSERT INTO scheme_state (scheme, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scheme, key) DO UPDATE SET value = excluded.value",
                rusqlite::params![self.scheme, key, value],
            )
            .map(|_| ())
            .map_err(|e| crate::client::ClientError::State(e.to_string()))
    }
}

/// An attachment about to be sent: its plaintext, its media type, and its reference (blob id,
/// key), after the encrypted blob is uploaded.
pub struct Outgoing<'a> {
    /// The plaintext file.
    pub bytes: &'a [u8],
    /// What it is.
    pub media: Media,
    /// Its encrypted blob's reference.
    pub attachment: &'a AttachmentRef,
}

/// An application message after encryption, as the sender's client half sees it.
pub struct OutgoingMessage<'a> {
    /// The chat.
    pub chat: &'a str,
    /// The plaintext the recipients will decrypt (JSON: text, attachment reference, and the
    /// scheme's inner fields under `scheme`).
    pub plaintext: &'a [u8],
    /// The MLS ciphertext the provider will relay.
    pub ciphertext: &'a [u8],
}

/// What kind of MLS message an envelope holds; the provider sees the kind, recipients check
/// that the content is of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Envelope {
    /// An application message (content).
    Application,
    /// A welcome to a new member.
    Welcome,
    /// A commit (membership or key change).
    Commit,
}

impl Envelope {
    /// The envelope's first byte.
    pub fn byte(self) -> u8 {
        match self {
            Envelope::Application => 0,
            Envelope::Welcome => 1,
            Envelope::Commit => 2,
        }
    }

    /// The kind a first byte names.
    pub fn of(b: u8) -> Option<Envelope> {
        match b {
            0 => Some(Envelope::Application),
            1 => Some(Envelope::Welcome),
            2 => Some(Envelope::Commit),
            _ => None,
        }
    }
}

/// A message as the provider half sees it on `POST /v1/messages`.
pub struct IncomingMessage<'a> {
    /// The chat (group).
    pub group: &'a str,
    /// What the envelope says it holds.
    pub kind: Envelope,
    /// The MLS bytes (the envelope without its kind byte).
    pub ciphertext: &'a [u8],
    /// The scheme fields beside it, if any.
    pub fields: Option<&'a Value>,
    /// The authenticated data in its clear framing (empty if none, or if it does not parse):
    /// what the sender's client half put there ([`ClientScheme::aad`]), unverified by the
    /// provider, verified by every recipient's decryption.
    pub aad: &'a [u8],
}

/// What a client half decides for one outgoing attachment.
#[derive(Clone, Debug, PartialEq)]
pub enum ScanAction {
    /// Nothing leaves the device.
    Nothing,
    /// Send this body to `POST /v1/scan`; the reply goes to [`ClientScheme::on_scan_reply`].
    Request(Value),
    /// Send each body to `POST /v1/scan`, in order (one per counted frame of a video); the
    /// replies go to [`ClientScheme::on_scan_reply`] together, as a JSON array in the same
    /// order. An empty list sends nothing and the reply is an empty array.
    Requests(Vec<Value>),
    /// The device itself decided to disclose the plaintext for review, for this reason.
    Disclose(String),
}

/// A decrypted application message, as a recipient's client half sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Delivered {
    /// Provider message id.
    pub id: i64,
    /// Chat.
    pub chat: String,
    /// Sender (MLS).
    pub from: String,
    /// The decrypted plaintext (JSON: text and attachment reference).
    pub plaintext: Vec<u8>,
    /// The scheme fields the sender attached, as delivered.
    pub fields: Option<Value>,
    /// SHA-256 of the MLS ciphertext it came in, hex.
    #[serde(default)]
    pub ciphertext_sha256: String,
    /// The sender's identity key, from its verified MLS credential, hex.
    #[serde(default)]
    pub sender_key: String,
    /// The message's MLS authenticated data, verified by its decryption.
    #[serde(default, with = "hex::serde")]
    pub aad: Vec<u8>,
    /// The decrypted attachment, if any (not kept with the stored message).
    #[serde(skip)]
    pub attachment: Option<Vec<u8>>,
}

/// The client half of a detection scheme. It runs on the device, before encryption on send
/// and after decryption on receipt.
pub trait ClientScheme: Send {
    /// The scheme's name; must equal what the provider announces.
    fn name(&self) -> &str;
    /// Called for each attachment about to be sent, after its encrypted blob is uploaded.
    fn on_attachment(
        &mut self,
        _ctx: &ClientCtx,
        _a: &Outgoing,
    ) -> Result<ScanAction, crate::client::ClientError> {
        Ok(ScanAction::Nothing)
    }
    /// Reads the provider's reply to a scan request: `Some(reason)` discloses the plaintext
    /// for review. The default never discloses: a scheme must say when it does.
    fn on_scan_reply(
        &mut self,
        _ctx: &ClientCtx,
        _a: &Outgoing,
        _reply: &Value,
    ) -> Result<Option<String>, crate::client::ClientError> {
        Ok(None)
    }
    /// Called for each application message before encryption: fields to put *inside* the
    /// plaintext, under `scheme` (seen by recipients only), or `None`.
    fn inner_fields(
        &mut self,
        _ctx: &ClientCtx,
        _chat: &str,
    ) -> Result<Option<Value>, crate::client::ClientError> {
        Ok(None)
    }
    /// Called for each application message after its plaintext is final and before it is
    /// encrypted: bytes to carry in the MLS authenticated data, in the clear beside the
    /// ciphertext and authenticated by it (S9's franking tag), or `None`.
    fn aad(
        &mut self,
        _ctx: &ClientCtx,
        _chat: &str,
        _plaintext: &[u8],
    ) -> Result<Option<Vec<u8>>, crate::client::ClientError> {
        Ok(None)
    }
    /// Called for each application message after encryption, with its plaintext and its
    /// ciphertext: fields to send beside the ciphertext (seen by the provider), or `None`.
    fn message_fields(
        &mut self,
        _ctx: &ClientCtx,
        _m: &OutgoingMessage,
    ) -> Result<Option<Value>, crate::client::ClientError> {
        Ok(None)
    }
    /// Scheme messages not tied to one image, sent to `POST /v1/scheme/message` after each
    /// send (for example threshold-share vouchers).
    fn outbox(&mut self, _ctx: &ClientCtx) -> Result<Vec<Value>, crate::client::ClientError> {
        Ok(Vec::new())
    }
    /// Called for each application message received, after decryption. An error marks the
    /// message as failed (it is still acknowledged).
    fn on_receive(
        &mut self,
        _ctx: &ClientCtx,
        _m: &Delivered,
    ) -> Result<(), crate::client::ClientError> {
        Ok(())
    }
    /// The body of `POST /v1/report` for a received message the user reports.
    fn report(
        &mut self,
        _ctx: &ClientCtx,
        _m: &Delivered,
        _reason: &str,
    ) -> Result<Value, crate::client::ClientError> {
        Err(crate::client::ClientError::Scheme(
            "this scheme has no reporting".into(),
        ))
    }
}
