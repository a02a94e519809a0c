//! The messenger client: an [`MlsClient`] talking to the provider through a [`Transport`].
//!
//! # Wire envelope
//! The provider relays opaque payloads. The first byte says what the rest is
//! ([`Envelope`]): `0` an MLS application message, `1` an MLS welcome, `2` an MLS handshake
//! message (a commit or proposal). MLS framing already reveals this distinction to anyone who
//! sees the bytes; the provider and the recipient both refuse an envelope that does not match
//! its framing, and the recipient does so before it processes anything.
//!
//! # Chats
//! A chat's MLS group id is 16 random bytes (hex), drawn by its creator: the provider routes by
//! it and learns nothing from it, and two people's chats called "family" never meet. The title
//! the user gave ("family") travels inside the group context ([`crate::mls::TITLE_EXTENSION`]),
//! which only members read. Each client maps its own chat names to group ids (a joined chat takes
//! the creator's title, with a suffix if the name is taken here); every public method takes the
//! local name. Membership changes (a join, an add, a removal) come out of [`Client::recv`] as
//! [`Received::change`], so users see who was let in.
//!
//! An application message's plaintext is JSON: `{"text"?, "attachment"?}`, where the attachment
//! is an [`AttachmentRef`] (blob id, key, nonce, digest). Delivery is at-least-once; the client
//! records the ids it has processed, so a redelivered message is acknowledged again but never
//! shown twice.

use crate::identity::{Identity, safety_number};
use crate::mls::{
    AttachmentRef, Incoming, Media, MlsClient, MlsError, check_binding, open_attachment,
    seal_attachment,
};
use crate::scan::{
    ClientCtx, ClientScheme, Delivered, Envelope, Outgoing, OutgoingMessage, ScanAction,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The provider could not be reached or answered with an error.
    #[error("provider: {0}")]
    Transport(String),
    /// End-to-end encryption failed.
    #[error(transparent)]
    Mls(#[from] MlsError),
    /// Local state could not be read or written.
    #[error("client state: {0}")]
    State(String),
    /// The scheme's client half failed, or does not fit the provider's scheme.
    #[error("scheme: {0}")]
    Scheme(String),
    /// A peer's identity is not the one this client trusts (a changed or unregistered key), or
    /// a message's claimed sender is not its MLS sender.
    #[error(
        "identity: {0}\n  compare safety numbers with them (`scanlab client safety-number PEER`) before trusting a new key"
    )]
    Identity(String),
    /// The provider announces another scheme, or other parameters, than the ones this client
    /// pinned when it first used the deployment: a silent downgrade (say from E2EE to
    /// server-side scanning) would look exactly like this.
    #[error(
        "the provider's scheme changed: {0}\n  nothing was sent; run `scanlab client accept-scheme` to accept the new scheme"
    )]
    SchemeChanged(String),
    /// A name or id that would go into a URL is not a plain name.
    #[error("{0:?} is not a valid name or id (letters, digits, '-' and '_' only)")]
    BadId(String),
    /// Another member's commit to the chat was accepted first; this one was dropped.
    #[error(
        "another member changed chat {0:?} first; nothing was changed\n  receive (`recv`), then try again"
    )]
    Stale(String),
    /// A peer has published no key package.
    #[error(
        "{0} has no key package left at the provider\n  ask them to run the client once to publish more"
    )]
    NoKeyPackage(String),
}

fn st<E: std::fmt::Display>(e: E) -> ClientError {
    ClientError::State(e.to_string())
}

/// A name or id that goes into a URL path: letters, digits, `-` and `_` only (account names
/// and blob ids are), so a peer's `../` cannot reach another endpoint with this client's token.
pub fn url_id(s: &str) -> Result<&str, ClientError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s)
    } else {
        Err(ClientError::BadId(s.into()))
    }
}

/// How a client reaches the provider: one request primitive, and JSON helpers over it.
pub trait Transport {
    /// Sends `method path` with `body` (JSON when `json`), authenticated by `token`; returns
    /// the answer's bytes, or an error naming the status for a non-2xx answer.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        json: bool,
    ) -> Result<Vec<u8>, ClientError>;

    /// `POST` a JSON body; returns the JSON answer.
    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Value, ClientError> {
        decode(&self.call(
            "POST",
            path,
            token,
            serde_json::to_vec(body).map_err(st)?,
            true,
        )?)
    }
    /// `GET` a JSON answer.
    fn get(&self, path: &str, token: Option<&str>) -> Result<Value, ClientError> {
        decode(&self.call("GET", path, token, Vec::new(), false)?)
    }
    /// `PUT` raw bytes; returns the JSON answer.
    fn put_bytes(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Value, ClientError> {
        decode(&self.call("PUT", path, token, body, false)?)
    }
    /// `GET` raw bytes.
    fn get_bytes(&self, path: &str, token: Option<&str>) -> Result<Vec<u8>, ClientError> {
        self.call("GET", path, token, Vec::new(), false)
    }
}

/// The body of a 2xx answer, or an error naming the status and the provider's message.
fn answer(ok: bool, status: &str, bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
    if !ok {
        return Err(ClientError::Transport(format!(
            "{status}: {}",
            String::from_utf8_lossy(bytes)
        )));
    }
    Ok(bytes.to_vec())
}

/// The pinned form of a scheme announcement: canonical text (serde_json's maps are sorted)
/// without `params.fresh`.
fn pinned_text(info: &Value) -> String {
    let mut pinned = info.clone();
    if let Some(p) = pinned.get_mut("params").and_then(Value::as_object_mut) {
        p.remove("fresh");
    }
    pinned.to_string()
}

/// A long announcement, cut for an error message.
fn short(s: &str) -> String {
    if s.len() <= 160 {
        return s.into();
    }
    let mut end = 160;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn decode(b: &[u8]) -> Result<Value, ClientError> {
    serde_json::from_slice(b)
        .map_err(|e| ClientError::Transport(format!("answer is not JSON: {e}")))
}

/// HTTP to a provider URL over a real socket.
pub struct HttpTransport {
    base: String,
    http: reqwest::blocking::Client,
}

impl HttpTransport {
    /// A transport to `base` (e.g. `http://127.0.0.1:8731`).
    pub fn new(base: &str) -> Self {
        HttpTransport {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::blocking::Client::new(),
        }
    }
}

impl Transport for HttpTransport {
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        json: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if json {
            r = r.header("content-type", "application/json");
        }
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r
            .send()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        answer(status.is_success(), &status.to_string(), &bytes)
    }
}

/// The provider in the same process, for simulations of thousands of users: each call goes
/// through the very same router, handlers and provider-view recording as HTTP, minus the socket.
pub struct LocalTransport {
    router: axum::Router,
    rt: tokio::runtime::Runtime,
}

impl LocalTransport {
    /// A transport to `provider`, in process.
    pub fn new(provider: std::sync::Arc<crate::Provider>) -> Self {
        Self::from_router(crate::router(provider))
    }

    /// A transport to any party's router in process (an enclave's, for simulations), through
    /// its own recording layer.
    pub fn from_router(router: axum::Router) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        LocalTransport { router, rt }
    }
}

impl Transport for LocalTransport {
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        json: bool,
    ) -> Result<Vec<u8>, ClientError> {
        use tower::ServiceExt;
        let mut req = axum::http::Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if json {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(axum::body::Body::from(body))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let router = self.router.clone();
        self.rt.block_on(async move {
            let resp = router
                .oneshot(req)
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            answer(status.is_success(), &status.to_string(), &bytes)
        })
    }
}

/// A rewrite of one answer: the honest answer's bytes in, the lie out.
pub type Lie = Box<dyn Fn(Vec<u8>) -> Vec<u8> + Send>;

/// A provider that lies, where a provider can: in its answers. Wraps the honest transport and
/// passes each answer to `METHOD path` through a rewrite set with [`Tampering::lie`]; every
/// request is also logged. For experiments on malicious providers and tests of what a client
/// detects: the client code under test is the real one, unchanged.
pub struct Tampering<T: Transport> {
    honest: T,
    tamper: Tamper,
}

/// The handle a test or experiment keeps to a [`Tampering`] transport, to change its lies
/// while a client holds the transport.
#[derive(Clone, Default)]
pub struct Tamper {
    lies: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Lie>>>,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl<T: Transport> Tampering<T> {
    /// Wraps `honest`; returns the transport and its handle.
    pub fn new(honest: T) -> (Tampering<T>, Tamper) {
        let tamper = Tamper::default();
        let handle = tamper.clone();
        (Tampering { honest, tamper }, handle)
    }
}

impl Tamper {
    /// From now on, answers to `request` (`"GET /v1/scheme"`) pass through `lie`.
    pub fn lie(&self, request: &str, lie: impl Fn(Vec<u8>) -> Vec<u8> + Send + 'static) {
        self.lies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request.into(), Box::new(lie));
    }
    /// From now on, answers to `request` are `answer`, whatever the honest provider said.
    pub fn answer(&self, request: &str, answer: Value) {
        self.lie(request, move |_| answer.to_string().into_bytes());
    }
    /// Back to honest answers.
    pub fn stop(&self) {
        self.lies.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    /// Every request made so far, as `METHOD path`.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<T: Transport> Transport for Tampering<T> {
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        json: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let key = format!("{method} {path}");
        self.tamper
            .asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key.clone());
        // The request still reaches the honest provider (a lie is told about a real
        // exchange), but a lie replaces its answer even when the honest one was an error.
        let honest = self.honest.call(method, path, token, body, json);
        let lies = self.tamper.lies.lock().unwrap_or_else(|e| e.into_inner());
        match lies.get(&key) {
            Some(lie) => Ok(lie(honest.unwrap_or_default())),
            None => honest,
        }
    }
}

/// What [`Client::send_detailed`] sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Provider message id.
    pub id: i64,
    /// The attachment's blob id, if there was one.
    pub blob: Option<String>,
}

/// A decrypted message, or a change of a chat's members, as `recv` reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Received {
    /// Provider message id.
    pub id: i64,
    /// Chat, by this client's name for it.
    pub chat: String,
    /// Sender's name (for a change, who made it).
    pub from: String,
    /// Text, if any.
    pub text: Option<String>,
    /// Where the decrypted image was saved, if any.
    pub image: Option<PathBuf>,
    /// A change of the chat's members, if this was one (a welcome or a commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Membership>,
}

/// Who joined or left a chat with one welcome or commit: what a user must be shown, since a
/// member added without their noticing (a ghost) reads everything after.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Membership {
    /// Names added (for a welcome, every member: this client has just joined).
    pub added: Vec<String>,
    /// Names removed.
    pub removed: Vec<String>,
}

/// A messenger client: identity, MLS state and bookkeeping under `home`.
pub struct Client<T: Transport> {
    home: PathBuf,
    identity: SigningKey,
    mls: MlsClient,
    transport: T,
    token: String,
    db: Connection,
    scheme: Option<Box<dyn ClientScheme>>,
    /// The pinned provider's key-transparency log key (its id).
    log_key: Option<ed25519_dalek::VerifyingKey>,
    /// Chats joined in the queue page being processed: a key package each, published once
    /// the page's MLS state is committed.
    joined_in_page: usize,
}

/// What [`Client::monitor`] found in the key-transparency log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Monitored {
    /// Leaves in the log.
    pub size: u64,
    /// Keys logged under this account's name (its own included).
    pub own_entries: usize,
    /// The head checked: signed by the provider, consistent with every head this client saw
    /// before. Others (an escrow authority, another user) can check their copy against it.
    pub head: crate::kt::KtHead,
    /// The provider's id (its log key, hex), as this client pinned it.
    pub provider: String,
}

const KEY_PACKAGES_AT_ONCE: usize = 5;

/// Whether this home has never published key packages (its first run).
fn existing_is_none(db: &Connection) -> Result<bool, ClientError> {
    let n: i64 = db
        .query_row("SELECT COUNT(*) FROM published", [], |r| r.get(0))
        .map_err(st)?;
    Ok(n == 0)
}

impl<T: Transport> Client<T> {
    /// Registers `name` at the provider (first run) or logs in again (later runs), and keeps
    /// key packages published.
    pub fn connect(home: &Path, name: &str, transport: T) -> Result<Self, ClientError> {
        let db = crate::mls::open_private_db(home, "client.sqlite").map_err(st)?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS account (auth_secret TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS seen (id INTEGER PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS published (n INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS scheme_state (scheme TEXT NOT NULL, key TEXT NOT NULL,
                 value BLOB NOT NULL, PRIMARY KEY (scheme, key));
             CREATE TABLE IF NOT EXISTS received (id INTEGER PRIMARY KEY, message TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS contacts (name TEXT PRIMARY KEY, identity_key BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS scheme_pin (announcement TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS provider_pin (id TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS chats (name TEXT PRIMARY KEY, gid TEXT NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS kt_head (head TEXT NOT NULL);",
        )
        .map_err(st)?;
        let existing: Option<String> = db
            .query_row("SELECT auth_secret FROM account", [], |r| r.get(0))
            .ok();
        let key = match existing {
            Some(hex_secret) => {
                let s = Zeroizing::new(hex::decode(hex_secret).map_err(st)?);
                SigningKey::from_bytes(&s.as_slice().try_into().map_err(st)?)
            }
            None => {
                let mut s = Zeroizing::new([0u8; 32]);
                rand::RngCore::fill_bytes(&mut rand::rng(), s.as_mut());
                let key = SigningKey::from_bytes(&s);
                transport.post("/v1/register", None, &json!({"name": name, "identity_key": hex::encode(key.verifying_key().as_bytes())}))?;
                db.execute(
                    "INSERT INTO account (auth_secret) VALUES (?1)",
                    [hex::encode(s.as_ref())],
                )
                .map_err(st)?;
                key
            }
        };
        let mls = MlsClient::open(home, name, &key)?;
        let c = transport.post("/v1/auth/challenge", None, &json!({"name": name}))?;
        let nonce_hex = c["nonce"].as_str().unwrap_or_default();
        let nonce = hex::decode(nonce_hex).map_err(st)?;
        let provider = c["provider"].as_str().unwrap_or_default();
        // The provider this account registered with, pinned on first login: a signature is
        // bound to it, and another provider's challenge is refused before anything is signed.
        let pinned: Option<String> = db
            .query_row("SELECT id FROM provider_pin", [], |r| r.get(0))
            .optional()
            .map_err(st)?;
        match pinned {
            Some(p) if p != provider => {
                return Err(ClientError::Identity(format!(
                    "the provider answering is {provider:?}, not {p:?}, the one this account registered with"
                )));
            }
            Some(_) => {}
            None => {
                db.execute("INSERT INTO provider_pin (id) VALUES (?1)", [provider])
                    .map_err(st)?;
            }
        }
        let sig = key.sign(&crate::provider::auth_message(provider, name, &nonce));
        let t = transport.post(
            "/v1/auth/token",
            None,
            &json!({"name": name, "nonce": nonce_hex, "signature": hex::encode(sig.to_bytes())}),
        )?;
        let token = t["token"]
            .as_str()
            .ok_or_else(|| ClientError::Transport("no token".into()))?
            .to_string();
        let first_run = existing_is_none(&db)?;
        let log_key = <[u8; 32]>::try_from(hex::decode(provider).unwrap_or_default().as_slice())
            .ok()
            .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok());
        let client = Client {
            home: home.to_owned(),
            identity: key,
            mls,
            transport,
            token,
            db,
            scheme: None,
            log_key,
            joined_in_page: 0,
        };
        if first_run {
            client.publish_key_packages(KEY_PACKAGES_AT_ONCE)?;
            client
                .db
                .execute(
                    "INSERT INTO published (n) VALUES (?1)",
                    [KEY_PACKAGES_AT_ONCE as i64],
                )
                .map_err(st)?;
        }
        Ok(client)
    }

    fn publish_key_packages(&self, n: usize) -> Result<(), ClientError> {
        let kps = (0..n)
            .map(|_| self.mls.key_package().map(|k| B64.encode(k)))
            .collect::<Result<Vec<_>, _>>()?;
        self.transport.post(
            "/v1/keypackages",
            Some(&self.token),
            &json!({"packages": kps}),
        )?;
        Ok(())
    }

    /// This client's name.
    pub fn name(&self) -> &str {
        self.mls.name()
    }

    /// This account's identity, as its leaves present it.
    pub fn identity(&self) -> Identity {
        Identity {
            name: self.name().into(),
            key: *self.identity.verifying_key().as_bytes(),
        }
    }

    /// The identity key this client trusts for `name`: pinned on first contact.
    pub fn pinned(&self, name: &str) -> Result<Option<[u8; 32]>, ClientError> {
        let k: Option<Vec<u8>> = self
            .db
            .query_row(
                "SELECT identity_key FROM contacts WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(st)?;
        k.map(|k| k.try_into().map_err(|_| st("a pinned key is not 32 bytes")))
            .transpose()
    }

    /// The safety number of this account and `peer` (as pinned): the same 60 digits on both
    /// devices exactly when neither was given a false key. Users compare it out of band.
    pub fn safety_number(&self, peer: &str) -> Result<String, ClientError> {
        let key = self.pinned(peer)?.ok_or_else(|| {
            ClientError::Identity(format!("no identity key known for {peer:?} yet"))
        })?;
        Ok(safety_number(
            &self.identity(),
            &Identity {
                name: peer.into(),
                key,
            },
        ))
    }

    /// Trusts `identity` from now on, replacing any earlier key for its name: what a user does
    /// after comparing safety numbers.
    pub fn trust(&self, identity: &Identity) -> Result<(), ClientError> {
        self.db
            .execute(
                "INSERT OR REPLACE INTO contacts (name, identity_key) VALUES (?1, ?2)",
                rusqlite::params![identity.name, identity.key.to_vec()],
            )
            .map_err(st)?;
        Ok(())
    }

    /// The trust decision on one leaf whose binding verified: this account's own key for its
    /// own name; for others, the pinned key, or on first contact the provider's directory entry,
    /// which is then pinned.
    fn vet(&self, id: &Identity) -> Result<(), ClientError> {
        if id.name == self.name() {
            return if id.key == self.identity().key {
                Ok(())
            } else {
                Err(ClientError::Identity(format!(
                    "a leaf claims to be this account with another key ({})",
                    hex::encode(id.key)
                )))
            };
        }
        match self.pinned(&id.name)? {
            Some(k) if k == id.key => Ok(()),
            Some(k) => Err(ClientError::Identity(format!(
                "{:?} presents identity key {}, not the {} pinned for them",
                id.name,
                hex::encode(id.key),
                hex::encode(k)
            ))),
            None => {
                let d = self.transport.get(
                    &format!("/v1/identity/{}", url_id(&id.name)?),
                    Some(&self.token),
                )?;
                let listed = d["identity_key"].as_str().unwrap_or_default();
                if listed != hex::encode(id.key) {
                    return Err(ClientError::Identity(format!(
                        "{:?}'s leaf is bound to {}, but the directory lists {listed:?}",
                        id.name,
                        hex::encode(id.key)
                    )));
                }
                // The directory's word must be in the key-transparency log, where the account
                // itself can see it.
                let log = self.log_key.ok_or_else(|| {
                    ClientError::Identity("the provider's id is not a log key".into())
                })?;
                let lookup: crate::kt::Lookup =
                    serde_json::from_value(d["kt"].clone()).map_err(|e| {
                        ClientError::Identity(format!(
                            "the directory gave {:?}'s key without key-transparency evidence ({e})",
                            id.name
                        ))
                    })?;
                lookup
                    .verify(&log, &id.name, &id.key)
                    .map_err(|e| ClientError::Identity(e.to_string()))?;
                self.observe_kt(&lookup.head)?;
                self.trust(id)
            }
        }
    }

    /// Monitors the key-transparency log for this account: the log served must match its
    /// signed head, and every key logged under this account's name must be its own. A second
    /// key is what a provider planting a ghost "bob" for someone else had to log:
    /// [`ClientError::Identity`] says so.
    pub fn monitor(&self) -> Result<Monitored, ClientError> {
        let log = self
            .log_key
            .ok_or_else(|| ClientError::Identity("the provider's id is not a log key".into()))?;
        let v = self.transport.get("/v1/kt", Some(&self.token))?;
        let head: crate::kt::KtHead = serde_json::from_value(v["head"].clone())
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let leaves: Vec<crate::kt::KtLeaf> = serde_json::from_value(v["leaves"].clone())
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let keys = crate::kt::audit(&log, &head, &leaves, self.name())
            .map_err(|e| ClientError::Identity(e.to_string()))?;
        self.observe_kt(&head)?;
        let mine = self.identity().key;
        if let Some(other) = keys.iter().find(|k| **k != mine) {
            return Err(ClientError::Identity(format!(
                "the key-transparency log lists another key for this account, {}: someone was given a ghost",
                hex::encode(other)
            )));
        }
        Ok(Monitored {
            size: head.size,
            own_entries: keys.len(),
            head,
            provider: hex::encode(log.as_bytes()),
        })
    }

    /// Checks a verified key-transparency head against the last one this client kept: the
    /// same size needs the same root, a larger one a consistency proof from it, and a smaller
    /// one is a rollback ([`crate::kt::verify_consistency`]). Keeps the new head.
    fn observe_kt(&self, head: &crate::kt::KtHead) -> Result<(), ClientError> {
        if let Some(old) = self.kt_head()? {
            let proof = if head.size > old.size && old.size > 0 {
                let v = self.transport.get(
                    &format!("/v1/kt/consistency/{}/{}", old.size, head.size),
                    Some(&self.token),
                )?;
                v["proof"].as_str().unwrap_or_default().to_string()
            } else {
                String::new()
            };
            crate::kt::verify_consistency(&old, head, &proof)
                .map_err(|e| ClientError::Identity(e.to_string()))?;
            if head.size == old.size {
                return Ok(());
            }
        }
        self.db.execute_batch("DELETE FROM kt_head").map_err(st)?;
        self.db
            .execute(
                "INSERT INTO kt_head (head) VALUES (?1)",
                [serde_json::to_string(head).map_err(st)?],
            )
            .map_err(st)?;
        Ok(())
    }

    /// The last key-transparency head this client verified, if any: what it would gossip.
    pub fn kt_head(&self) -> Result<Option<crate::kt::KtHead>, ClientError> {
        let kept: Option<String> = self
            .db
            .query_row("SELECT head FROM kt_head", [], |r| r.get(0))
            .optional()
            .map_err(st)?;
        kept.map(|k| serde_json::from_str(&k).map_err(st))
            .transpose()
    }

    /// [`Client::vet`] as the MLS layer takes it.
    fn vetter(&self) -> impl Fn(&Identity) -> Result<(), MlsError> + '_ {
        move |id| self.vet(id).map_err(|e| MlsError::Refused(e.to_string()))
    }

    /// The deployment's scheme as the provider announces it, `{name, params}`, checked
    /// against the announcement this client pinned on first use: a change of scheme or of any
    /// parameter (radius, list root, escrow key, enclave allow-list) is refused with
    /// [`ClientError::SchemeChanged`] until the user accepts it ([`Client::accept_scheme`]).
    /// `params.fresh` is left out of the pin: it holds what changes without changing the
    /// scheme (an attestation that expires daily), which the client half verifies itself.
    pub fn scheme_info(&self) -> Result<Value, ClientError> {
        let info = self.transport.get("/v1/scheme", Some(&self.token))?;
        let text = pinned_text(&info);
        let pinned: Option<String> = self
            .db
            .query_row("SELECT announcement FROM scheme_pin", [], |r| r.get(0))
            .optional()
            .map_err(st)?;
        match pinned {
            Some(p) if p == text => Ok(info),
            Some(p) => Err(ClientError::SchemeChanged(format!(
                "pinned {}, now announced {}",
                short(&p),
                short(&text)
            ))),
            None => {
                self.pin_scheme(&text)?;
                Ok(info)
            }
        }
    }

    /// Accepts the scheme the provider now announces, replacing the pinned one: what a user
    /// does after being told of the change. Returns the new announcement.
    pub fn accept_scheme(&self) -> Result<Value, ClientError> {
        let info = self.transport.get("/v1/scheme", Some(&self.token))?;
        self.pin_scheme(&pinned_text(&info))?;
        Ok(info)
    }

    fn pin_scheme(&self, text: &str) -> Result<(), ClientError> {
        self.db
            .execute_batch("DELETE FROM scheme_pin")
            .map_err(st)?;
        self.db
            .execute("INSERT INTO scheme_pin (announcement) VALUES (?1)", [text])
            .map_err(st)?;
        Ok(())
    }

    /// Installs a scheme's client half; it must be the scheme the provider announces.
    pub fn set_scheme(&mut self, scheme: Box<dyn ClientScheme>) -> Result<(), ClientError> {
        let info = self.scheme_info()?;
        if info["name"].as_str() != Some(scheme.name()) {
            return Err(ClientError::Scheme(format!(
                "the provider runs {}, not {}",
                info["name"],
                scheme.name()
            )));
        }
        self.scheme = Some(scheme);
        Ok(())
    }

    /// The transport, for scheme code and tools that need more than the messenger verbs.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The session token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Runs `f` on the installed client half with its context; `None` when there is none.
    fn with_scheme<R>(
        &mut self,
        f: impl FnOnce(&mut dyn ClientScheme, &ClientCtx) -> Result<R, ClientError>,
    ) -> Result<Option<R>, ClientError> {
        self.with_scheme_as(true, f)
    }

    /// What the installed client half decides, on this device alone, for an image it is not
    /// sending: the [`ScanAction`] its [`ClientScheme::on_attachment`] returns, with the
    /// network cut off (its `get` fails) and every change to its state rolled back. Nothing
    /// leaves the device. It measures what a user can learn by themselves: a
    /// [`ScanAction::Disclose`] for a chosen image means the device alone knows the image is
    /// listed (a list on the device is a membership oracle); a [`ScanAction::Request`] means
    /// finding out takes the provider. `None` when no scheme is installed.
    pub fn probe(&mut self, bytes: &[u8], media: Media) -> Result<Option<ScanAction>, ClientError> {
        let attachment = AttachmentRef {
            blob: "probe".into(),
            key: "00".repeat(32),
            nonce: "00".repeat(12),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
            len: bytes.len(),
            sender: self.mls.name().to_string(),
            chat: String::new(),
            media,
        };
        let out = Outgoing {
            bytes,
            media,
            attachment: &attachment,
        };
        self.db.execute_batch("SAVEPOINT probe").map_err(st)?;
        let r = self.with_scheme_as(false, |s, ctx| s.on_attachment(ctx, &out));
        self.db
            .execute_batch("ROLLBACK TO probe; RELEASE probe")
            .map_err(st)?;
        r
    }

    fn with_scheme_as<R>(
        &mut self,
        online: bool,
        f: impl FnOnce(&mut dyn ClientScheme, &ClientCtx) -> Result<R, ClientError>,
    ) -> Result<Option<R>, ClientError> {
        let Client {
            scheme,
            db,
            mls,
            identity,
            transport,
            token,
            ..
        } = self;
        let Some(scheme) = scheme.as_mut() else {
            return Ok(None);
        };
        let name = scheme.name().to_string();
        let get = |path: &str| {
            if online {
                transport.get(path, Some(token.as_str()))
            } else {
                Err(ClientError::Scheme(format!(
                    "offline probe: GET {path} would leave the device"
                )))
            }
        };
        let ctx = ClientCtx {
            db,
            scheme: &name,
            account: mls.name(),
            identity,
            get: &get,
        };
        f(scheme.as_mut(), &ctx).map(Some)
    }

    fn deliver(
        &self,
        chat: &str,
        to: &[String],
        kind: Envelope,
        mls: &[u8],
    ) -> Result<i64, ClientError> {
        self.deliver_with(chat, to, kind, mls, None)
    }

    fn deliver_with(
        &self,
        chat: &str,
        to: &[String],
        kind: Envelope,
        mls: &[u8],
        scheme: Option<Value>,
    ) -> Result<i64, ClientError> {
        if to.is_empty() {
            return Ok(0);
        }
        let payload = [&[kind.byte()][..], mls].concat();
        let mut body = json!({"group": chat, "recipients": to, "payload": B64.encode(payload)});
        if let Some(f) = scheme {
            body["scheme"] = f;
        }
        let r = self
            .transport
            .post("/v1/messages", Some(&self.token), &body)?;
        Ok(r["id"].as_i64().unwrap_or_default())
    }

    /// The members of group `gid` other than this client.
    fn others(&self, gid: &str) -> Result<Vec<String>, ClientError> {
        Ok(self
            .mls
            .members(gid)?
            .into_iter()
            .filter(|m| m != self.name())
            .collect())
    }

    /// The MLS group id of this client's chat `chat`: what the provider sees and routes by.
    pub fn chat_id(&self, chat: &str) -> Result<String, ClientError> {
        self.db
            .query_row("SELECT gid FROM chats WHERE name = ?1", [chat], |r| {
                r.get(0)
            })
            .optional()
            .map_err(st)?
            .ok_or_else(|| MlsError::UnknownGroup(chat.into()).into())
    }

    /// This client's name for group `gid`.
    fn chat_name(&self, gid: &str) -> Result<String, ClientError> {
        self.db
            .query_row("SELECT name FROM chats WHERE gid = ?1", [gid], |r| r.get(0))
            .optional()
            .map_err(st)?
            .ok_or_else(|| MlsError::UnknownGroup(gid.into()).into())
    }

    /// This client's chats, by name.
    pub fn chats(&self) -> Result<Vec<String>, ClientError> {
        let mut q = self
            .db
            .prepare("SELECT name FROM chats ORDER BY name")
            .map_err(st)?;
        let names = q
            .query_map([], |r| r.get(0))
            .map_err(st)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(st)?;
        Ok(names)
    }

    /// The chat's members, as this client's MLS state has them (each leaf verified).
    pub fn members(&self, chat: &str) -> Result<Vec<String>, ClientError> {
        Ok(self.mls.members(&self.chat_id(chat)?)?)
    }

    /// Creates chat `chat` with `peers` (a 1:1 chat is a chat with one peer). Its group id is
    /// random; `chat` is its title, which the peers see and the provider does not.
    /// A refused creation (a peer's key refused, the provider unreachable) leaves no group
    /// behind, so the chat can be created again.
    pub fn create_chat(&self, chat: &str, peers: &[&str]) -> Result<(), ClientError> {
        crate::mls::check_title(chat)?;
        if self.chat_id(chat).is_ok() {
            return Err(
                MlsError::Refused(format!("this client already has a chat {chat:?}")).into(),
            );
        }
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        let gid = hex::encode(id);
        self.mls.create_group(&gid, Some(chat))?;
        self.db
            .execute(
                "INSERT INTO chats (name, gid) VALUES (?1, ?2)",
                rusqlite::params![chat, gid],
            )
            .map_err(st)?;
        self.add(chat, peers).inspect_err(|_| {
            let _ = self.mls.delete_group(&gid);
            let _ = self.db.execute("DELETE FROM chats WHERE gid = ?1", [&gid]);
        })
    }

    /// Adds peers: takes one key package of each, commits, and sends the commit to the current
    /// members and the welcome to the new ones.
    pub fn add(&self, chat: &str, peers: &[&str]) -> Result<(), ClientError> {
        let chat = &self.chat_id(chat)?;
        let existing = self.others(chat)?;
        let mut kps = Vec::new();
        for p in peers {
            let r = self
                .transport
                .get(
                    &format!("/v1/keypackages/{}", url_id(p)?),
                    Some(&self.token),
                )
                .map_err(|_| ClientError::NoKeyPackage(p.to_string()))?;
            kps.push(
                B64.decode(r["package"].as_str().unwrap_or_default())
                    .map_err(st)?,
            );
        }
        let (commit, welcome) = self.mls.add(chat, &kps, &self.vetter())?;
        self.publish_commit(chat, &existing, &commit)?;
        let new: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
        self.deliver(chat, &new, Envelope::Welcome, &welcome)?;
        Ok(())
    }

    /// Removes peers; they receive the commit that removes them, and nothing after it decrypts.
    pub fn remove(&self, chat: &str, peers: &[&str]) -> Result<(), ClientError> {
        let chat = &self.chat_id(chat)?;
        let before = self.others(chat)?;
        let commit = self.mls.remove(chat, peers)?;
        self.publish_commit(chat, &before, &commit)?;
        Ok(())
    }

    /// Sends a pending commit and merges it only once the provider has accepted it as the one
    /// commit of its epoch; if another member's came first, drops it ([`ClientError::Stale`]).
    /// So two members committing at once cannot fork the group: one commit per epoch reaches
    /// anyone.
    fn publish_commit(&self, gid: &str, to: &[String], commit: &[u8]) -> Result<(), ClientError> {
        match self.deliver(gid, to, Envelope::Commit, commit) {
            Ok(_) => Ok(self.mls.merge_pending(gid)?),
            // Dropped only when the provider said another commit came first. On any other
            // error (a lost answer after the provider accepted it) the commit stays pending:
            // dropping it would leave this client an epoch behind everyone who merged it.
            Err(ClientError::Transport(m)) if m.starts_with("409") => {
                self.mls.clear_pending(gid)?;
                Err(ClientError::Stale(self.chat_name(gid)?))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends text and/or an image (encrypted as a blob, its key inside the MLS message).
    ///
    /// With a scheme installed, its client half sees the image before the message is sent
    /// (and may have it scanned, and disclose it for review if the provider says so), and sees
    /// the message plaintext before encryption.
    pub fn send(
        &mut self,
        chat: &str,
        text: Option<&str>,
        image: Option<&[u8]>,
    ) -> Result<i64, ClientError> {
        Ok(self.send_detailed(chat, text, image)?.id)
    }

    /// [`Client::send`], also returning the attachment's blob id (simulations use it to follow
    /// one image through the provider's records).
    pub fn send_detailed(
        &mut self,
        chat: &str,
        text: Option<&str>,
        image: Option<&[u8]>,
    ) -> Result<Sent, ClientError> {
        self.send_file(chat, text, image.map(|b| (b, Media::Image)))
    }

    /// Sends text and/or a file of a given media type (image, video, other). The scheme's
    /// client half sees the file, typed, before the message is sent, then the plaintext;
    /// afterwards whatever scheme messages it queued are sent.
    pub fn send_file(
        &mut self,
        chat: &str,
        text: Option<&str>,
        file: Option<(&[u8], Media)>,
    ) -> Result<Sent, ClientError> {
        let chat = &self.chat_id(chat)?;
        let attachment = match file {
            Some((bytes, media)) => {
                let (ct, mut r) = seal_attachment(bytes, self.name(), chat)?;
                r.media = media;
                let up = self
                    .transport
                    .put_bytes("/v1/blobs", Some(&self.token), ct)?;
                r.blob = up["id"].as_str().unwrap_or_default().to_string();
                self.scan(bytes, media, &r)?;
                Some(r)
            }
            None => None,
        };
        let mut body = json!({"text": text, "attachment": attachment});
        if let Some(inner) = self
            .with_scheme(|s, ctx| s.inner_fields(ctx, chat))?
            .flatten()
        {
            body["scheme"] = inner;
        }
        let body = Zeroizing::new(serde_json::to_vec(&body).map_err(st)?);
        let aad = self
            .with_scheme(|s, ctx| s.aad(ctx, chat, &body))?
            .flatten()
            .unwrap_or_default();
        let ct = self.mls.encrypt_with_aad(chat, &aad, &body)?;
        let fields = self
            .with_scheme(|s, ctx| {
                s.message_fields(
                    ctx,
                    &OutgoingMessage {
                        chat,
                        plaintext: &body,
                        ciphertext: &ct,
                    },
                )
            })?
            .flatten();
        let id = self.deliver_with(
            chat,
            &self.others(chat)?,
            Envelope::Application,
            &ct,
            fields,
        )?;
        self.flush_outbox()?;
        Ok(Sent {
            id,
            blob: attachment.map(|a| a.blob),
        })
    }

    /// Sends `body` as an application message's plaintext, exactly as given, in an envelope
    /// of kind `envelope`, with `fields` beside it and no scheme hook run: what a modified
    /// client can send. For adversary experiments and tests of what providers and recipients
    /// refuse.
    pub fn send_raw(
        &mut self,
        chat: &str,
        envelope: Envelope,
        body: &Value,
        fields: Option<Value>,
    ) -> Result<i64, ClientError> {
        let chat = &self.chat_id(chat)?;
        let ct = self
            .mls
            .encrypt(chat, &serde_json::to_vec(body).map_err(st)?)?;
        self.deliver_with(chat, &self.others(chat)?, envelope, &ct, fields)
    }

    /// Sends the scheme messages the client half has queued.
    fn flush_outbox(&mut self) -> Result<(), ClientError> {
        let out = self
            .with_scheme(|s, ctx| s.outbox(ctx))?
            .unwrap_or_default();
        for m in out {
            self.transport
                .post("/v1/scheme/message", Some(&self.token), &m)?;
        }
        Ok(())
    }

    /// Runs the scheme's decision on one outgoing attachment: nothing, a scan (and disclosure
    /// if the client half then decides so), or disclosure decided on the device.
    fn scan(&mut self, bytes: &[u8], media: Media, r: &AttachmentRef) -> Result<(), ClientError> {
        let out = Outgoing {
            bytes,
            media,
            attachment: r,
        };
        let reason = match self.with_scheme(|s, ctx| s.on_attachment(ctx, &out))? {
            None | Some(ScanAction::Nothing) => None,
            Some(ScanAction::Disclose(reason)) => Some(reason),
            Some(ScanAction::Request(req)) => {
                let reply = self.transport.post("/v1/scan", Some(&self.token), &req)?;
                self.with_scheme(|s, ctx| s.on_scan_reply(ctx, &out, &reply))?
                    .flatten()
            }
            Some(ScanAction::Requests(reqs)) => {
                let mut replies = Vec::with_capacity(reqs.len());
                for req in &reqs {
                    replies.push(self.transport.post("/v1/scan", Some(&self.token), req)?);
                }
                let reply = Value::Array(replies);
                self.with_scheme(|s, ctx| s.on_scan_reply(ctx, &out, &reply))?
                    .flatten()
            }
        };
        if let Some(reason) = reason {
            self.transport.post(
                "/v1/review",
                Some(&self.token),
                &json!({"blob": r.blob, "reason": reason, "image": B64.encode(bytes), "attachment": r}),
            )?;
        }
        Ok(())
    }

    /// Reports received message `id` to the provider, through the scheme's report hook;
    /// returns the provider's answer.
    pub fn report(&mut self, id: i64, reason: &str) -> Result<Value, ClientError> {
        let stored: Option<String> = self
            .db
            .query_row("SELECT message FROM received WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .ok();
        let m: Delivered = serde_json::from_str(
            &stored.ok_or_else(|| ClientError::State(format!("no received message {id}")))?,
        )
        .map_err(st)?;
        let body = self
            .with_scheme(|s, ctx| s.report(ctx, &m, reason))?
            .ok_or_else(|| ClientError::Scheme("no scheme installed".into()))?;
        self.transport.post("/v1/report", Some(&self.token), &body)
    }

    /// Fetches, decrypts and acknowledges everything waiting. Images are saved under
    /// `home/inbox/`. A message that fails to decrypt is acknowledged (it can never succeed)
    /// and reported as an error entry.
    pub fn recv(&mut self) -> Result<Vec<Result<Received, ClientError>>, ClientError> {
        let mut out = Vec::new();
        // Pages are bounded in count and bytes; fetch until the provider says there is no more.
        loop {
            let (mut page, more) = self.recv_page()?;
            out.append(&mut page);
            if !more {
                return Ok(out);
            }
        }
    }

    /// One queue page: its messages, and whether more wait behind it.
    #[allow(clippy::type_complexity)]
    ///
    /// The page is processed in one transaction of each of the client's two databases (MLS
    /// state, then messages), committed before the page is acknowledged, so a page costs two
    /// commits however many messages it holds. A message that fails rolls back its own MLS
    /// writes only. Should the process die between the two commits, the page's MLS state is
    /// kept and its messages are not: they come again, unacknowledged, and fail to decrypt
    /// (their keys are used), as they would after a crash in the middle of one message.
    fn recv_page(&mut self) -> Result<(Vec<Result<Received, ClientError>>, bool), ClientError> {
        let q = self.transport.get("/v1/queue", Some(&self.token))?;
        let more = q["more"].as_bool().unwrap_or(false);
        let batch = self.mls.batch()?;
        self.db.execute_batch("SAVEPOINT recv_page").map_err(st)?;
        let page = self.process_page(&q);
        let page = match page {
            Ok(p) => batch.commit().map_err(ClientError::from).map(|()| p),
            Err(e) => Err(e),
        };
        let (out, acks) = match page {
            Ok(p) => p,
            Err(e) => {
                self.joined_in_page = 0;
                let _ = self
                    .db
                    .execute_batch("ROLLBACK TO recv_page; RELEASE recv_page");
                return Err(e);
            }
        };
        // The MLS state is committed. A message database that cannot commit is rolled back
        // whole, so the connection is never left inside a transaction (where nothing would
        // commit again); the page is then not acknowledged.
        let released = self.db.execute_batch("RELEASE recv_page");
        if released.is_err() {
            let _ = self.db.execute_batch("ROLLBACK");
        }
        // Key packages for the chats joined in this page are published only now: their
        // private halves are stored, so no welcome can arrive for a key that was rolled back.
        let joined = std::mem::take(&mut self.joined_in_page);
        if joined > 0 {
            self.publish_key_packages(joined)?;
        }
        released.map_err(st)?;
        if !acks.is_empty() {
            self.transport
                .post("/v1/queue/ack", Some(&self.token), &json!({"ids": acks}))?;
        }
        Ok((out, more && !acks.is_empty()))
    }

    /// The messages of one queue page, and the ids to acknowledge.
    #[allow(clippy::type_complexity)]
    fn process_page(
        &mut self,
        q: &Value,
    ) -> Result<(Vec<Result<Received, ClientError>>, Vec<i64>), ClientError> {
        let mut out = Vec::new();
        let mut acks = Vec::new();
        for m in q["messages"].as_array().cloned().unwrap_or_default() {
            let id = m["id"].as_i64().unwrap_or_default();
            acks.push(id);
            let seen = self
                .db
                .execute("INSERT OR IGNORE INTO seen (id) VALUES (?1)", [id])
                .map_err(st)?
                == 0;
            if seen {
                continue;
            }
            let chat = m["group"].as_str().unwrap_or_default().to_string();
            // A payload that is not base64 can never be processed: it is acknowledged and
            // reported, like one that fails to decrypt, so it cannot hold up the queue.
            let payload = match B64.decode(m["payload"].as_str().unwrap_or_default()) {
                Ok(p) => p,
                Err(e) => {
                    out.push(Err(MlsError::Malformed(format!(
                        "message {id}: payload is not base64: {e}"
                    ))
                    .into()));
                    continue;
                }
            };
            let fields = m.get("scheme").filter(|f| !f.is_null()).cloned();
            let from = m["sender"].as_str().unwrap_or_default().to_string();
            out.extend(self.handle(id, &chat, &from, &payload, fields).transpose());
        }
        Ok((out, acks))
    }

    /// Processes one MLS message with this client's trust decisions on its leaves.
    fn process_mls(&self, chat: &str, mls: &[u8]) -> Result<Incoming, MlsError> {
        self.mls.process(chat, mls, &self.vetter())
    }

    /// Joins a chat from a welcome, naming it by its title (with a suffix when the name is
    /// taken here), and reports who is in it.
    fn join(&mut self, id: i64, from: &str, welcome: &[u8]) -> Result<Received, ClientError> {
        let j = self.mls.join(welcome, &self.vetter())?;
        // The account the provider says sent the welcome must be the member who signed it.
        if j.by != from {
            let _ = self.mls.delete_group(&j.group);
            return Err(ClientError::Identity(format!(
                "welcome {id} came from account {from:?} but is signed by {:?}",
                j.by
            )));
        }
        let title = j.title.clone().unwrap_or_else(|| j.group.clone());
        let mut name = title.clone();
        if self.chat_id(&name).is_ok() {
            name = format!("{title} ({})", &j.group[..j.group.len().min(8)]);
        }
        self.db
            .execute(
                "INSERT OR IGNORE INTO chats (name, gid) VALUES (?1, ?2)",
                rusqlite::params![name, j.group],
            )
            .map_err(st)?;
        // Replaced once the page commits (see `recv_page`).
        self.joined_in_page += 1;
        Ok(Received {
            id,
            chat: self.chat_name(&j.group)?,
            from: j.by,
            text: None,
            image: None,
            change: Some(Membership {
                added: j.members,
                removed: vec![],
            }),
        })
    }

    fn handle(
        &mut self,
        id: i64,
        gid: &str,
        from: &str,
        payload: &[u8],
        fields: Option<Value>,
    ) -> Result<Option<Received>, ClientError> {
        let (&kind, mls) = payload
            .split_first()
            .ok_or_else(|| MlsError::Malformed("empty payload".into()))?;
        let envelope = Envelope::of(kind)
            .ok_or_else(|| MlsError::Malformed(format!("unknown envelope kind {kind}")))?;
        if envelope == Envelope::Welcome {
            return self.join(id, from, mls).map(Some);
        }
        // The envelope must say what the framing says, checked before anything is processed:
        // content in an envelope that told the provider it holds none (to skip what the scheme
        // requires of application messages) is refused, and so is a commit smuggled in an
        // application envelope, before it could be merged.
        let f = crate::mls::framing(mls)?;
        if f.group != gid.as_bytes() {
            return Err(MlsError::Refused(format!(
                "message {id} is framed for another group than the one it was delivered in"
            ))
            .into());
        }
        if f.handshake != (envelope == Envelope::Commit) {
            return Err(MlsError::Refused(format!(
                "message {id} is a {} message sent as a {envelope:?} envelope",
                if f.handshake {
                    "handshake"
                } else {
                    "application"
                }
            ))
            .into());
        }
        let (sender, plaintext, aad) = match self.process_mls(gid, mls)? {
            Incoming::Application {
                sender,
                plaintext,
                aad,
            } => (sender, plaintext, aad),
            Incoming::Commit { by, .. } if by != from => {
                return Err(ClientError::Identity(format!(
                    "commit {id} came from account {from:?} but is signed by {by:?}"
                )));
            }
            Incoming::Commit {
                by, added, removed, ..
            } if !added.is_empty() || !removed.is_empty() => {
                return Ok(Some(Received {
                    id,
                    chat: self.chat_name(gid)?,
                    from: by,
                    text: None,
                    image: None,
                    change: Some(Membership { added, removed }),
                }));
            }
            _ => return Ok(None),
        };
        // The account the provider says sent it must be the MLS sender: a member cannot pass
        // its words off as another's, nor the provider re-attribute them.
        if sender != from {
            return Err(ClientError::Identity(format!(
                "message {id} came from account {from:?} but is signed by {sender:?}"
            )));
        }
        let v: Value =
            serde_json::from_slice(&plaintext).map_err(|e| MlsError::Malformed(e.to_string()))?;
        let sender_key = self
            .mls
            .identities(gid)?
            .into_iter()
            .find(|i| i.name == sender)
            .map(|i| hex::encode(i.key))
            .unwrap_or_default();
        // The attachment is fetched and opened, but kept only once the client half has
        // checked the message with it.
        let attachment = match v.get("attachment").filter(|a| !a.is_null()) {
            Some(a) => {
                let r: AttachmentRef = serde_json::from_value(a.clone())
                    .map_err(|e| MlsError::Malformed(e.to_string()))?;
                // The reference must be the message's own: its sender, its chat.
                check_binding(&r, &sender, gid)?;
                let blob = self.transport.get_bytes(
                    &format!("/v1/blobs/{}", url_id(&r.blob)?),
                    Some(&self.token),
                )?;
                Some((open_attachment(&blob, &r)?, r))
            }
            None => None,
        };
        let delivered = Delivered {
            id,
            chat: gid.into(),
            from: sender.clone(),
            plaintext: plaintext.to_vec(),
            fields,
            ciphertext_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(mls)),
            sender_key,
            aad,
            attachment: attachment.as_ref().map(|(img, _)| img.to_vec()),
        };
        // The client half checks the message before anything of it is kept (a refused one
        // is neither stored for a later report nor written to the inbox).
        self.with_scheme(|s, ctx| s.on_receive(ctx, &delivered))?;
        if self.scheme.is_some() {
            self.db
                .execute(
                    "INSERT OR REPLACE INTO received (id, message) VALUES (?1, ?2)",
                    rusqlite::params![id, serde_json::to_string(&delivered).map_err(st)?],
                )
                .map_err(st)?;
        }
        let image = match attachment {
            Some((img, r)) => {
                let dir = self.home.join("inbox");
                std::fs::create_dir_all(&dir).map_err(st)?;
                let path = dir.join(format!(
                    "{id}-{}.{}",
                    &r.sha256[..16],
                    crate::mls::file_extension(&img)
                ));
                std::fs::write(&path, img).map_err(st)?;
                Some(path)
            }
            None => None,
        };
        let text = v.get("text").and_then(|t| t.as_str()).map(str::to_string);
        Ok(Some(Received {
            id,
            chat: self.chat_name(gid)?,
            from: sender,
            text,
            image,
            change: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_leaves_out_only_the_fresh_part() {
        let a =
            serde_json::json!({"name": "enclave", "params": {"allow": ["aa"], "fresh": {"n": 1}}});
        let mut b = a.clone();
        b["params"]["fresh"]["n"] = 2.into();
        assert_eq!(pinned_text(&a), pinned_text(&b));
        b["params"]["allow"] = serde_json::json!(["aa", "bb"]);
        assert_ne!(pinned_text(&a), pinned_text(&b));
        let mut c = a.clone();
        c["fresh"] = 1.into();
        assert_ne!(
            pinned_text(&a),
            pinned_text(&c),
            "only params.fresh is left out"
        );
    }
}
