//! The provider: a real HTTP service (axum on tokio) that relays opaque MLS messages and
//! encrypted attachment blobs, and records everything it receives in the provider view.
//!
//! # Protocol
//! All bodies are JSON except blobs (raw bytes). Binary fields are base64.
//!
//! | endpoint | auth | what |
//! |---|---|---|
//! | `POST /v1/register {name, identity_key}` | no | create an account bound to an Ed25519 key |
//! | `POST /v1/auth/challenge {name}` → `{nonce, provider}` | no | a fresh nonce of its own (unknown names too), and the provider's id |
//! | `POST /v1/auth/token {name, nonce, signature}` → `{token}` | no | signature over [`auth_message`] (`scanlab-auth-v3 ‖ 0 ‖ provider ‖ 0 ‖ name ‖ 0 ‖ nonce`) |
//! | `POST /v1/keypackages {packages}` | yes | publish MLS key packages |
//! | `GET /v1/keypackages/{name}` → `{package}` | yes | take one (single-use) |
//! | `GET /v1/identity/{name}` → `{name, identity_key, kt}` | yes | the directory: the account's registered identity key, which its MLS leaves must be bound to ([`crate::identity`]), with its key-transparency inclusion proof ([`crate::kt`]) |
//! | `GET /v1/kt` → `{head, leaves}` | yes | the key-transparency log, for monitors |
//! | `GET /v1/kt/consistency/{from}/{to}` → `{proof}` | yes | that the log at size `to` extends the log at size `from` |
//! | `POST /v1/messages {group, recipients, payload}` → `{id}` | yes | fan out to each recipient's queue; a welcome founds a group or comes from a member; a commit comes from a member and is the first of its epoch (403, 409 otherwise); an envelope that does not match the message's MLS framing is refused (400) |
//! | `GET /v1/queue` → `{messages}` | yes | the caller's unacknowledged messages, in order |
//! | `POST /v1/queue/ack {ids}` | yes | acknowledge; until then a message is redelivered |
//! | `PUT /v1/blobs` → `{id}` | yes | store an encrypted attachment |
//! | `GET /v1/blobs/{id}` | yes | fetch it |
//! | `GET /v1/scheme` → `{name, params}` | no | the deployment's detection scheme ([`crate::scan`]) |
//! | `POST /v1/scan {blob, ...}` → reply | yes | the scheme's provider half scans an image |
//! | `POST /v1/review {blob, reason, image}` | yes | a client discloses an image for review |
//! | `POST /v1/scheme/message {...}` → reply | yes | a scheme message not tied to one image (vouchers) |
//! | `POST /v1/report {...}` → reply | yes | a recipient reports a message to the provider |
//!
//! Every request and every response passes the recording layer ([`crate::record`]) into the
//! provider view, and every state change is written in the same transaction as the record of
//! the request that caused it.
//!
//! Delivery is at-least-once with message ids: the client drops ids it has seen. Nothing is
//! deleted from a queue until its owner acknowledges it, and every write is committed to SQLite
//! (WAL, `synchronous = FULL`) before the provider answers; concurrent requests share commits
//! ([`crate::commit`]).
//!
//! # Threat assumptions and limits
//! The provider is honest-but-curious for the baseline: it follows the protocol and records
//! everything. It sees metadata (who sends to whom, when, how much) by design; the content is
//! MLS ciphertext. Bodies are capped by [`Limits`]; an oversize body is refused with 413 before
//! it is stored.
//!
//! # Against hostile users
//! - **Login.** Each challenge has its own nonce, kept until a valid signature of *its* name
//!   spends it ([`auth_message`]): nobody else can spend, replace or expire a user's challenge,
//!   and a signed answer works once. The challenge endpoint answers unknown names exactly as
//!   known ones. At most [`MAX_CHALLENGES`] are outstanding, each for [`CHALLENGE_TTL`].
//! - **Tokens** expire after [`TOKEN_TTL_MS`]; the store keeps their SHA-256 only.
//! - **Nothing before authentication.** A request to a route that needs a token is refused
//!   from its headers, before its body is read; a refused request is counted
//!   ([`Provider::refused`]), not recorded. Public routes (register, login, scheme) accept
//!   small bodies only.
//! - **Bounded work.** Queue pages stop at [`crate::store::MAX_PAGE_BYTES`]; bodies must arrive
//!   within [`crate::record::BODY_TIMEOUT`] and headers within the server's header timeout
//!   ([`crate::ServeOptions`]); image decodes share one process-wide memory budget.
//! - **Keys.** Small-order (weak) Ed25519 identity keys are refused at registration, and
//!   signatures are verified strictly.
//!
//! # Design points, settled
//! - **Key packages can be taken by any user**, as MLS needs (whoever adds you takes one). A
//!   user draining another's is limited to [`KEY_PACKAGE_TAKES_PER_MINUTE`] takes a minute
//!   (429 beyond), every take is recorded with its taker, and the owner republishes one per
//!   welcome it processes. MLS last-resort key packages would remove the drain entirely; they
//!   are not used yet.
//! - **Blob ids are bearer capabilities**: 128 random bits, as the CDN URLs of Signal's
//!   attachments. Whoever has the id (the members, from inside the MLS message) can fetch the
//!   blob, which is ciphertext under a key only they hold.
//! - **An empty recipient list** is refused (400): a message to nobody is a way to store bytes.

use crate::commit::Db;
use crate::record::{Pending, Recorded, SentSummary};
use crate::scan::{ProviderScheme, ScanCtx, ScanError};
use crate::store::{Review, Store, StoreError, ViewRecord};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Context string of the authentication signature.
pub const AUTH_CONTEXT: &[u8] = b"scanlab-auth-v3";

/// What a client signs to log in: the context, the provider's id, its account name and the
/// challenge's nonce, NUL-separated (ids and names cannot contain NUL), so a signature for one
/// provider, one name or one challenge is worth nothing for another. The provider's id comes
/// with each challenge; clients pin it on first use, so a provider that relays another's
/// challenge to a user gets a signature the other refuses.
pub fn auth_message(provider: &str, name: &str, nonce: &[u8]) -> Vec<u8> {
    [
        AUTH_CONTEXT,
        b"\0",
        provider.as_bytes(),
        b"\0",
        name.as_bytes(),
        b"\0",
        nonce,
    ]
    .concat()
}

/// How many key packages one account may take a minute (of anyone's).
pub const KEY_PACKAGE_TAKES_PER_MINUTE: u32 = 60;

/// How long a session token is honoured.
pub const TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;
/// How long a login challenge can be answered.
pub const CHALLENGE_TTL: std::time::Duration = std::time::Duration::from_secs(120);
/// Most login challenges outstanding at once; past it the oldest are dropped first.
pub const MAX_CHALLENGES: usize = 1 << 16;

/// An outstanding login challenge.
struct Challenge {
    name: String,
    issued: std::time::Instant,
}

/// The digest under which a token is stored: a stolen database holds no usable token.
fn token_digest(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Size limits on what the provider accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest attachment blob, in bytes (default 32 MiB).
    pub max_blob: usize,
    /// Largest JSON request, in bytes (default 4 MiB).
    pub max_request: usize,
    /// How long a session token is good for, in milliseconds (default [`TOKEN_TTL_MS`]).
    pub token_ttl_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blob: 32 << 20,
            max_request: 4 << 20,
            token_ttl_ms: TOKEN_TTL_MS,
        }
    }
}

/// The provider's state.
pub struct Provider {
    db: Db,
    /// The id logins are bound to ([`auth_message`]): the hex public key of `kt`.
    id: String,
    /// The key that signs key-transparency heads ([`crate::kt`]).
    kt: ed25519_dalek::SigningKey,
    /// Token digest → (account, issued ms). Tokens never change once issued, so a cache in
    /// front of the store saves a database round trip (and a commit wait) on every request.
    tokens: RwLock<HashMap<String, (String, i64)>>,
    /// Nonce → challenge. Each challenge has its own nonce, consumed only by a valid signature
    /// of its own name, so nobody else can spend or replace a user's challenge.
    challenges: Mutex<HashMap<[u8; 32], Challenge>>,
    /// Requests refused before authentication: counted, not recorded.
    refused: std::sync::atomic::AtomicU64,
    /// Taker → (start of its minute, takes in it).
    takes: Mutex<HashMap<String, (std::time::Instant, u32)>>,
    limits: Limits,
    scheme: Option<Arc<dyn ProviderScheme>>,
}

/// Errors mapped to HTTP statuses in one place ([`ApiError::status`]); a malformed request is
/// never a 500.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or unknown token.
    #[error("authentication required")]
    Unauthorized,
    /// Bad signature, unknown account or no challenge outstanding.
    #[error("authentication failed")]
    AuthFailed,
    /// Name taken.
    #[error("account name taken")]
    Conflict,
    /// A commit for an epoch that already has one.
    #[error("stale commit: {0}")]
    Stale(String),
    /// Nothing there.
    #[error("not found")]
    NotFound,
    /// Authenticated, but not allowed to do this (not a member of the group).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A field is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Over a size limit.
    #[error("request of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Too many requests of this kind; try again later.
    #[error("too many requests: {0}")]
    RateLimited(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider failed (a scheme's scan panicked); nothing about the request is wrong.
    #[error("internal error: {0}")]
    Internal(String),
    /// The deployment's scheme failed or refused the request; its cause decides the status.
    #[error("scheme: {0}")]
    Scheme(#[from] ScanError),
}

impl ApiError {
    /// The HTTP status for each error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::AuthFailed => StatusCode::UNAUTHORIZED,
            ApiError::Conflict | ApiError::Stale(_) => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Scheme(e) => e.status(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

impl Provider {
    /// A plain E2EE provider (scheme S0: nothing added) over a store.
    pub fn new(store: Box<dyn Store>, limits: Limits) -> Arc<Self> {
        Self::build(store, limits, None)
    }

    /// A provider running a detection scheme's provider half.
    pub fn with_scheme(
        store: Box<dyn Store>,
        limits: Limits,
        scheme: Arc<dyn ProviderScheme>,
    ) -> Arc<Self> {
        Self::build(store, limits, Some(scheme))
    }

    fn build(
        store: Box<dyn Store>,
        limits: Limits,
        scheme: Option<Arc<dyn ProviderScheme>>,
    ) -> Arc<Self> {
        let db = Db::start(store);
        // The provider's key-transparency log key: random on first start, then kept in its
        // store. Its public half is the provider's id, which clients pin at first login, so
        // it also pins the key that signs the identity log. Were the store unreadable, a fresh
        // key makes pinned clients refuse to log in: they fail safe.
        let fresh = || {
            let mut b = zeroize::Zeroizing::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::rng(), b.as_mut());
            b
        };
        let secret = db
            .call_blocking(move |s| {
                if let Some(k) = s.state("provider", "kt_secret")?
                    && let Ok(k) = <[u8; 32]>::try_from(k.as_slice())
                {
                    return Ok(zeroize::Zeroizing::new(k));
                }
                let k = fresh();
                s.set_state("provider", "kt_secret", k.as_ref())?;
                Ok(k)
            })
            .unwrap_or_else(|_: StoreError| fresh());
        let kt = ed25519_dalek::SigningKey::from_bytes(&secret);
        Arc::new(Provider {
            db,
            id: hex::encode(kt.verifying_key().as_bytes()),
            kt,
            tokens: RwLock::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            refused: Default::default(),
            takes: Mutex::new(HashMap::new()),
            limits,
            scheme,
        })
    }

    /// The deployed scheme's name (`e2ee` when none).
    pub fn scheme_name(&self) -> &str {
        self.scheme.as_ref().map_or("e2ee", |s| s.name())
    }

    /// The deployed scheme's provider half, if any.
    pub fn scheme(&self) -> Option<&Arc<dyn ProviderScheme>> {
        self.scheme.as_ref()
    }

    /// A stored blob, read only (tools and the analysis read the provider's data; nothing
    /// outside the recorded routes writes it). Blocks.
    pub fn blob(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = id.to_string();
        self.db.call_blocking(move |s| s.get_blob(&id))
    }

    /// The recorded provider view. Blocks; call it outside async code.
    pub fn view(&self) -> Result<Vec<ViewRecord>, StoreError> {
        self.db.call_blocking(|s| s.view())
    }

    /// The review queue: what was disclosed to the provider's reviewers. Blocks.
    pub fn reviews(&self) -> Result<Vec<Review>, StoreError> {
        self.db.call_blocking(|s| s.reviews())
    }

    /// The provider's id, which login signatures are bound to ([`auth_message`]): the hex
    /// public key that signs its key-transparency heads.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Logs an identity key for `name` without registering it: what a provider planting a
    /// ghost does when it must show a logged key. Bob's monitoring ([`crate::client::Client::monitor`])
    /// finds it. For experiments and tests. Blocks.
    pub fn dangerous_log_identity(&self, name: &str, key: [u8; 32]) -> Result<(), StoreError> {
        let name = name.to_string();
        self.db.call_blocking(move |s| s.kt_append(&name, &key))
    }

    /// Signs a key-transparency head over any `leaves`: what a provider rewriting its log (to
    /// drop a ghost key after use, say) would serve. Clients that saw the honest log refuse it
    /// ([`crate::kt::KtError::Fork`]). For experiments and tests.
    pub fn dangerous_kt_head(&self, leaves: &[(String, [u8; 32])]) -> crate::kt::KtHead {
        crate::kt::sign_head(&self.kt, leaves, now_ms() as u64 / 1000)
    }

    /// The key-transparency lookup the directory would serve for the leaf at `index`.
    /// Blocks.
    pub fn kt_lookup(&self, index: usize) -> Result<crate::kt::Lookup, StoreError> {
        let leaves = self.db.call_blocking(|s| s.kt_leaves())?;
        Ok(crate::kt::lookup(
            &self.kt,
            &leaves,
            index,
            now_ms() as u64 / 1000,
        ))
    }

    /// Requests refused before authentication (bad or no token on a route that needs one,
    /// failed logins): counted here, not recorded, so a flood of them costs no disk.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn owner(&self, token: &str) -> Result<Option<String>, StoreError> {
        let digest = token_digest(token);
        let cached = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
            .cloned();
        let found = match cached {
            Some(c) => Some(c),
            None => {
                let d = digest.clone();
                let owner = self.db.call(move |s| s.token_owner(&d)).await?;
                if let Some(o) = &owner {
                    self.tokens
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(digest, o.clone());
                }
                owner
            }
        };
        Ok(found.and_then(|(name, issued)| {
            (now_ms() - issued < self.limits.token_ttl_ms).then_some(name)
        }))
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The authenticated account of a request.
pub struct Authed(pub String);

impl FromRequestParts<Arc<Provider>> for Authed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, p: &Arc<Provider>) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        p.owner(&token)
            .await?
            .map(Authed)
            .ok_or(ApiError::Unauthorized)
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    let h = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    h.strip_prefix("Bearer ").map(str::to_string)
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(s)
        .map_err(|e| ApiError::BadRequest(format!("{what}: {e}")))
}

impl Recorded for Provider {
    fn db(&self) -> &Db {
        &self.db
    }
    fn body_limit(&self, path: &str) -> usize {
        if path.starts_with("/v1/blobs") {
            self.limits.max_blob
        } else {
            self.limits.max_request
        }
    }
    async fn who(&self, parts: &Parts) -> Result<Option<String>, StoreError> {
        match bearer(parts) {
            Some(t) => self.owner(&t).await,
            None => Ok(None),
        }
    }
    fn requires_auth(&self, path: &str) -> bool {
        !matches!(
            path,
            "/v1/register" | "/v1/auth/challenge" | "/v1/auth/token" | "/v1/scheme"
        )
    }
    fn count_refusal(&self) -> bool {
        self.refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    }
}

#[derive(serde::Deserialize)]
struct RegisterReq {
    name: String,
    identity_key: String,
}

async fn register(
    State(p): State<Arc<Provider>>,
    pending: Pending,
    Json(r): Json<RegisterReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key: [u8; 32] = hex::decode(&r.identity_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| ApiError::BadRequest("identity_key must be 32 bytes of hex".into()))?;
    let vk = VerifyingKey::from_bytes(&key)
        .map_err(|_| ApiError::BadRequest("identity_key is not an Ed25519 key".into()))?;
    // A small-order key (all zeros, say) verifies signatures nobody made.
    if vk.is_weak() {
        return Err(ApiError::BadRequest(
            "identity_key is a weak (small-order) Ed25519 key".into(),
        ));
    }
    if r.name.is_empty()
        || r.name.len() > 64
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::BadRequest(
            "name: 1-64 characters of [A-Za-z0-9_-]".into(),
        ));
    }
    let name = r.name;
    if !pending
        .write_with(&p.db, move |s| s.register(&name, &key))
        .await?
    {
        return Err(ApiError::Conflict);
    }
    Ok(Json(serde_json::json!({})))
}

#[derive(serde::Deserialize)]
struct ChallengeReq {
    name: String,
}

async fn challenge(
    State(p): State<Arc<Provider>>,
    Json(r): Json<ChallengeReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // The same answer whether or not the name exists, so names cannot be enumerated; a nonce
    // issued for an unknown name can simply never be redeemed.
    if r.name.len() > 64 {
        return Err(ApiError::BadRequest("name: at most 64 characters".into()));
    }
    let mut nonce = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let mut c = p.challenges.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= MAX_CHALLENGES {
        c.retain(|_, ch| ch.issued.elapsed() < CHALLENGE_TTL);
    }
    while c.len() >= MAX_CHALLENGES {
        let Some(oldest) = c.iter().min_by_key(|(_, ch)| ch.issued).map(|(n, _)| *n) else {
            break;
        };
        c.remove(&oldest);
    }
    c.insert(
        nonce,
        Challenge {
            name: r.name,
            issued: std::time::Instant::now(),
        },
    );
    Ok(Json(
        serde_json::json!({ "nonce": hex::encode(nonce), "provider": p.id }),
    ))
}

#[derive(serde::Deserialize)]
struct TokenReq {
    name: String,
    nonce: String,
    signature: String,
}

async fn token(
    State(p): State<Arc<Provider>>,
    pending: Pending,
    Json(r): Json<TokenReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let nonce: [u8; 32] = hex::decode(&r.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(ApiError::AuthFailed)?;
    // Check before consuming: a wrong signature, or someone else's, leaves the challenge to
    // its owner.
    let live = p
        .challenges
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&nonce)
        .is_some_and(|c| c.name == r.name && c.issued.elapsed() < CHALLENGE_TTL);
    if !live {
        return Err(ApiError::AuthFailed);
    }
    let name = r.name.clone();
    let key =
        p.db.call(move |s| s.identity_key(&name))
            .await?
            .ok_or(ApiError::AuthFailed)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| ApiError::AuthFailed)?;
    let sig: [u8; 64] = hex::decode(&r.signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or(ApiError::AuthFailed)?;
    key.verify_strict(
        &auth_message(&p.id, &r.name, &nonce),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| ApiError::AuthFailed)?;
    // Spent once: a second use of the same signed challenge fails.
    if p.challenges
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&nonce)
        .is_none()
    {
        return Err(ApiError::AuthFailed);
    }
    let mut t = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut t);
    let t = hex::encode(t);
    let issued = now_ms();
    let (digest, name) = (token_digest(&t), r.name.clone());
    let d = digest.clone();
    pending
        .write_with(&p.db, move |s| s.put_token(&d, &name, issued))
        .await?;
    p.tokens
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(digest, (r.name, issued));
    Ok(Json(serde_json::json!({ "token": t })))
}

#[derive(serde::Deserialize)]
struct KeyPackagesReq {
    packages: Vec<String>,
}

async fn publish_key_packages(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    Json(r): Json<KeyPackagesReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pk = r
        .packages
        .iter()
        .map(|s| b64(s, "package"))
        .collect::<Result<Vec<_>, _>>()?;
    let n = pk.len();
    pending
        .write_with(&p.db, move |s| s.add_key_packages(&me, &pk))
        .await?;
    Ok(Json(serde_json::json!({ "stored": n })))
}

async fn take_key_package(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    {
        let mut t = p.takes.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() > 100_000 {
            t.retain(|_, (since, _)| since.elapsed().as_secs() < 60);
        }
        let slot = t.entry(me).or_insert((std::time::Instant::now(), 0));
        if slot.0.elapsed().as_secs() >= 60 {
            *slot = (std::time::Instant::now(), 0);
        }
        if slot.1 >= KEY_PACKAGE_TAKES_PER_MINUTE {
            return Err(ApiError::RateLimited(format!(
                "at most {KEY_PACKAGE_TAKES_PER_MINUTE} key packages a minute"
            )));
        }
        slot.1 += 1;
    }
    let pk = pending
        .write_with(&p.db, move |s| s.take_key_package(&name))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(serde_json::json!({ "package": B64.encode(pk) })))
}

async fn identity(
    State(p): State<Arc<Provider>>,
    _me: Authed,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let n = name.clone();
    let (key, leaves) =
        p.db.call(move |s| Ok((s.identity_key(&n)?, s.kt_leaves()?)))
            .await?;
    let key = key.ok_or(ApiError::NotFound)?;
    let index = leaves
        .iter()
        .position(|(n, k)| *n == name && *k == key)
        .ok_or_else(|| ApiError::Internal("an account missing from the log".into()))?;
    let kt = crate::kt::lookup(&p.kt, &leaves, index, now_ms() as u64 / 1000);
    Ok(Json(
        serde_json::json!({ "name": name, "identity_key": hex::encode(key), "kt": kt }),
    ))
}

/// `GET /v1/kt/consistency/{from}/{to}`: the log at size `to` extends the log at `from`.
async fn kt_consistency(
    State(p): State<Arc<Provider>>,
    _me: Authed,
    Path((from, to)): Path<(u64, u64)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let leaves = p.db.call(|s| s.kt_leaves()).await?;
    let proof = crate::kt::prove_consistency(&leaves, from, to)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(serde_json::json!({ "proof": proof })))
}

/// `GET /v1/kt`: the key-transparency head and every leaf, for monitors.
async fn kt_log(
    State(p): State<Arc<Provider>>,
    _me: Authed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let leaves = p.db.call(|s| s.kt_leaves()).await?;
    let head = crate::kt::sign_head(&p.kt, &leaves, now_ms() as u64 / 1000);
    let leaves: Vec<crate::kt::KtLeaf> = leaves
        .into_iter()
        .map(|(name, k)| crate::kt::KtLeaf {
            name,
            key: hex::encode(k),
        })
        .collect();
    Ok(Json(serde_json::json!({ "head": head, "leaves": leaves })))
}

#[derive(serde::Deserialize)]
struct SendReq {
    group: String,
    recipients: Vec<String>,
    payload: String,
    /// What a scheme's client half adds to each message (S2: the escrow envelope). Delivered
    /// to the recipients with the payload.
    #[serde(default)]
    scheme: Option<serde_json::Value>,
}

/// The scheme context of one request: who asked, and the recorder's pending records.
fn ctx(p: &Provider, me: &str, pending: &Pending, endpoint: &str) -> ScanCtx {
    ScanCtx {
        db: p.db.clone(),
        who: me.to_string(),
        scheme: p.scheme_name().to_string(),
        pending: pending.clone(),
        endpoint: endpoint.to_string(),
    }
}

/// Runs a scheme hook off the async threads (hooks hash images, call enclaves and block on
/// storage); a panicking hook is a 500.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, ScanError> + Send + 'static,
) -> Result<R, ApiError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("the scheme failed: {e}")))??)
}

async fn send(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    Json(r): Json<SendReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let payload = b64(&r.payload, "payload")?;
    if r.recipients.is_empty() {
        return Err(ApiError::BadRequest("no recipients".into()));
    }
    // Anything that is not a handshake envelope is, for the scheme, an application message:
    // a modified client cannot skip the scheme's checks with an unknown kind (recipients
    // refuse unknown kinds).
    let kind = payload
        .first()
        .and_then(|&k| crate::scan::Envelope::of(k))
        .unwrap_or(crate::scan::Envelope::Application);
    // What the clear framing says (RFC 9420 §6). A handshake message in an application
    // envelope is refused (recipients refuse it too, before merging anything): a modified client
    // could otherwise smuggle a commit past the commit order, or past a scheme that inspects
    // only application messages. Bytes that do not parse are relayed as opaque; recipients
    // refuse them.
    let framing = match kind {
        crate::scan::Envelope::Welcome => None,
        _ => crate::mls::framing(payload.get(1..).unwrap_or_default()).ok(),
    };
    if let Some(f) = &framing {
        if f.group != r.group.as_bytes() {
            return Err(ApiError::BadRequest(
                "the message is for another group than the one it is sent to".into(),
            ));
        }
        if f.handshake != (kind == crate::scan::Envelope::Commit) {
            return Err(ApiError::BadRequest(format!(
                "a {} message sent in a {kind:?} envelope",
                if f.handshake {
                    "handshake"
                } else {
                    "application"
                }
            )));
        }
    }
    // The provider orders commits: the first commit of an epoch of a group is relayed, a
    // second one (a concurrent change by another member) is refused, so no two members merge
    // different commits and fork the group. Only a member may claim an epoch: group ids are
    // random (a stranger cannot name the group), and the provider knows who was welcomed in.
    let epoch = match (kind, &framing) {
        (crate::scan::Envelope::Commit, Some(f)) => Some(f.epoch),
        (crate::scan::Envelope::Commit, None) => {
            return Err(ApiError::BadRequest(
                "a commit envelope must hold an MLS commit".into(),
            ));
        }
        _ => None,
    };
    let mut fields = r.scheme.clone();
    if let Some(scheme) = p.scheme.clone() {
        let c = ctx(&p, &me, &pending, "POST /v1/messages");
        let sent = fields.clone();
        let aad = framing.as_ref().map(|f| f.aad.clone()).unwrap_or_default();
        let (group, payload) = (r.group.clone(), payload.clone());
        let stamp = blocking(move || {
            let m = crate::scan::IncomingMessage {
                group: &group,
                kind,
                ciphertext: payload.get(1..).unwrap_or_default(),
                fields: sent.as_ref(),
                aad: &aad,
            };
            if let Some(d) = scheme.on_message(&c, &m)? {
                c.derive(&d);
            }
            let stamp = scheme.stamp(&c, &m, now_ms() as u64)?;
            if let Some(s) = &stamp {
                c.derive(&serde_json::json!({ "stamp": s }));
            }
            Ok(stamp)
        })
        .await?;
        // The provider's stamp replaces whatever the sender put under its name.
        if let Some(stamp) = stamp {
            let mut f = match fields.take() {
                Some(serde_json::Value::Object(o)) => o,
                Some(other) => serde_json::Map::from_iter([("sender".to_string(), other)]),
                None => serde_json::Map::new(),
            };
            f.insert("stamp".into(), stamp);
            fields = Some(serde_json::Value::Object(f));
        }
    }
    let fields = fields.as_ref().map(|f| f.to_string());
    let id = pending
        .write_with(&p.db, move |s| {
            for name in &r.recipients {
                if s.identity_key(name)?.is_none() {
                    return Ok(Err(ApiError::BadRequest(format!(
                        "unknown recipient {name:?}"
                    ))));
                }
            }
            if kind == crate::scan::Envelope::Welcome || epoch.is_some() {
                let members = s.group_members(&r.group)?;
                // A welcome founds a group the provider has not seen; after that, only a
                // member welcomes others or commits.
                if !members.is_empty() && !members.contains(&me) {
                    return Ok(Err(ApiError::Forbidden(
                        "only a member of this group may commit to it or welcome others".into(),
                    )));
                }
                if kind == crate::scan::Envelope::Commit && members.is_empty() {
                    return Ok(Err(ApiError::Forbidden(
                        "no group with this id has been welcomed into".into(),
                    )));
                }
            }
            if let Some(e) = epoch
                && !s.claim_commit(&r.group, e)?
            {
                return Ok(Err(ApiError::Stale(format!(
                    "a commit for epoch {e} of this group was already accepted; process it first"
                ))));
            }
            if kind == crate::scan::Envelope::Welcome {
                let mut names = r.recipients.clone();
                names.push(me.clone());
                s.add_group_members(&r.group, &names)?;
            }
            s.enqueue(&r.group, &me, &r.recipients, &payload, fields.as_deref())
                .map(Ok)
        })
        .await??;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn queue(State(p): State<Arc<Provider>>, Authed(me): Authed) -> Result<Response, ApiError> {
    const PAGE: usize = 1000;
    let msgs = p.db.call(move |s| s.pending(&me, PAGE)).await?;
    let ids: Vec<i64> = msgs.iter().map(|m| m.id).collect();
    let bytes: usize = msgs.iter().map(|m| m.payload.len()).sum();
    let more = msgs.len() == PAGE || bytes >= crate::store::MAX_PAGE_BYTES;
    let out: Vec<_> = msgs
        .into_iter()
        .map(|m| {
            let mut v = serde_json::json!({ "id": m.id, "group": m.group, "sender": m.sender, "payload": B64.encode(m.payload) });
            if let Some(f) = m.fields.and_then(|f| serde_json::from_str::<serde_json::Value>(&f).ok()) {
                v["scheme"] = f;
            }
            v
        })
        .collect();
    let mut resp = Json(serde_json::json!({ "messages": out, "more": more })).into_response();
    // The page is made of stored messages: its record keeps their ids, not a second copy.
    resp.extensions_mut().insert(SentSummary(
        serde_json::json!({ "messages": ids }).to_string(),
    ));
    Ok(resp)
}

#[derive(serde::Deserialize)]
struct AckReq {
    ids: Vec<i64>,
}

async fn ack(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    Json(r): Json<AckReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let n = pending
        .write_with(&p.db, move |s| s.ack(&me, &r.ids))
        .await?;
    Ok(Json(serde_json::json!({ "acked": n })))
}

async fn put_blob(
    State(p): State<Arc<Provider>>,
    _me: Authed,
    pending: Pending,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.len() > p.limits.max_blob {
        return Err(ApiError::TooLarge(body.len()));
    }
    let id = pending
        .write_with(&p.db, move |s| s.put_blob(&body))
        .await?;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn get_blob(
    State(p): State<Arc<Provider>>,
    _me: Authed,
    Path(id): Path<String>,
) -> Result<Vec<u8>, ApiError> {
    p.db.call(move |s| s.get_blob(&id))
        .await?
        .ok_or(ApiError::NotFound)
}

async fn scheme_info(State(p): State<Arc<Provider>>) -> Json<serde_json::Value> {
    Json(match &p.scheme {
        Some(s) => serde_json::json!({ "name": s.name(), "params": s.public_params() }),
        None => serde_json::json!({ "name": "e2ee", "params": {} }),
    })
}

/// The three scheme endpoints that hand a JSON body to the provider half and answer its reply.
#[derive(Clone, Copy)]
enum Hook {
    Scan,
    SchemeMessage,
    Report,
}

async fn hook(
    p: Arc<Provider>,
    me: String,
    pending: Pending,
    body: serde_json::Value,
    which: Hook,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scheme = p.scheme.clone().ok_or(ApiError::NotFound)?;
    let endpoint = match which {
        Hook::Scan => "POST /v1/scan",
        Hook::SchemeMessage => "POST /v1/scheme/message",
        Hook::Report => "POST /v1/report",
    };
    let c = ctx(&p, &me, &pending, endpoint);
    let out = blocking(move || {
        let out = match which {
            Hook::Scan => scheme.scan(&c, &body),
            Hook::SchemeMessage => scheme.on_scheme_message(&c, &body),
            Hook::Report => scheme.on_report(&c, &body),
        }?;
        if let Some(d) = &out.derived {
            c.derive(d);
        }
        Ok(out)
    })
    .await?;
    Ok(Json(out.reply))
}

async fn scan(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    hook(p, me, pending, body, Hook::Scan).await
}

/// `GET /v1/scan/receipt/{blob}`: what the scheme says it scanned for a blob, so that a
/// recipient can check it against what it received (S5).
async fn scan_receipt(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    axum::extract::Path(blob): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scheme = p.scheme.clone().ok_or(ApiError::NotFound)?;
    let c = ctx(&p, &me, &pending, "GET /v1/scan/receipt");
    let out = blocking(move || scheme.receipt(&c, &blob)).await?;
    out.map(Json).ok_or(ApiError::NotFound)
}

async fn scheme_message(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    hook(p, me, pending, body, Hook::SchemeMessage).await
}

async fn report(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    hook(p, me, pending, body, Hook::Report).await
}

#[derive(serde::Deserialize)]
struct ReviewReq {
    blob: String,
    reason: String,
    image: String,
    /// The attachment's reference: the provider opens the blob with it and keeps the review
    /// only if the image is that blob's plaintext and the blob is the caller's own, so that a
    /// review is bound to its blob and nobody can frame another's attachment with an image.
    attachment: crate::mls::AttachmentRef,
}

async fn review(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    pending: Pending,
    Json(r): Json<ReviewReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let image = b64(&r.image, "image")?;
    if r.attachment.blob != r.blob || r.attachment.sender != me {
        return Err(ApiError::BadRequest(
            "the attachment reference is not for this blob from this account".into(),
        ));
    }
    let id = r.blob.clone();
    let blob =
        p.db.call(move |s| s.get_blob(&id))
            .await?
            .ok_or(ApiError::NotFound)?;
    let reference = r.attachment.clone();
    let opened =
        tokio::task::spawn_blocking(move || crate::mls::open_attachment(&blob, &reference))
            .await
            .map_err(|e| ApiError::Internal(format!("opening the blob failed: {e}")))?;
    if !matches!(&opened, Ok(pt) if *pt == image) {
        return Err(ApiError::BadRequest(
            "the image is not the plaintext of that blob under that reference".into(),
        ));
    }
    if let Some(scheme) = p.scheme.clone() {
        let c = ctx(&p, &me, &pending, "POST /v1/review");
        let (reason, img) = (r.reason.clone(), image.clone());
        blocking(move || scheme.on_review(&c, &reason, &img)).await?;
    }
    let item = Review {
        id: 0,
        at_ms: now_ms(),
        submitter: me,
        blob: r.blob,
        reason: r.reason,
        image,
    };
    let id = pending
        .write_with(&p.db, move |s| s.put_review(&item))
        .await?;
    Ok(Json(serde_json::json!({ "id": id })))
}

/// The provider's routes, with the recording layer in front of all of them.
pub fn router(p: Arc<Provider>) -> Router {
    Router::new()
        .route("/v1/register", post(register))
        .route("/v1/auth/challenge", post(challenge))
        .route("/v1/auth/token", post(token))
        .route("/v1/keypackages", post(publish_key_packages))
        .route("/v1/keypackages/{name}", get(take_key_package))
        .route("/v1/identity/{name}", get(identity))
        .route("/v1/kt", get(kt_log))
        .route("/v1/kt/consistency/{from}/{to}", get(kt_consistency))
        .route("/v1/messages", post(send))
        .route("/v1/queue", get(queue))
        .route("/v1/queue/ack", post(ack))
        .route("/v1/blobs", put(put_blob))
        .route("/v1/blobs/{id}", get(get_blob))
        .route("/v1/scheme", get(scheme_info))
        .route("/v1/scan", post(scan))
        .route("/v1/scan/receipt/{blob}", get(scan_receipt))
        .route("/v1/scheme/message", post(scheme_message))
        .route("/v1/report", post(report))
        .route("/v1/review", post(review))
        .layer(axum::middleware::from_fn_with_state(
            p.clone(),
            crate::record::record_layer::<Provider>,
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(p)
}
