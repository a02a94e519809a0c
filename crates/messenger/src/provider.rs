//! The provider: a real HTTP service (axum on tokio) that relays opaque MLS messages and
//! encrypted attachment blobs, and records everything it receives in the provider view.
//!
//! # Protocol
//! All bodies are JSON except blobs (raw bytes). Binary fields are base64.
//!
//! | endpoint | auth | what |
//! |---|---|---|
//! | `POST /v1/register {name, identity_key}` | no | create an account bound to an Ed25519 key |
//! | `POST /v1/auth/challenge {name}` → `{nonce}` | no | a fresh single-use nonce |
//! | `POST /v1/auth/token {name, signature}` → `{token}` | no | signature over `scanlab-auth-v1 ‖ nonce` |
//! | `POST /v1/keypackages {packages}` | yes | publish MLS key packages |
//! | `GET /v1/keypackages/{name}` → `{package}` | yes | take one (single-use) |
//! | `POST /v1/messages {group, recipients, payload}` → `{id}` | yes | fan out to each recipient's queue |
//! | `GET /v1/queue` → `{messages}` | yes | the caller's unacknowledged messages, in order |
//! | `POST /v1/queue/ack {ids}` | yes | acknowledge; until then a message is redelivered |
//! | `PUT /v1/blobs` → `{id}` | yes | store an encrypted attachment |
//! | `GET /v1/blobs/{id}` | yes | fetch it |
//! | `GET /v1/scheme` → `{name, params}` | no | the deployment's detection scheme ([`crate::scan`]) |
//! | `POST /v1/scan {blob, ...}` → reply | yes | the scheme's provider half scans an image |
//! | `POST /v1/review {blob, reason, image}` | yes | a client discloses an image for review |
//!
//! Delivery is at-least-once with message ids: the client drops ids it has seen. Nothing is
//! deleted from a queue until its owner acknowledges it, and every write is committed to SQLite
//! (WAL, `synchronous = FULL`) before the provider answers; concurrent requests share commits
//! ([`crate::commit`]).
//!
//! # Threat assumptions and limits
//! The provider is honest-but-curious for the baseline: it follows the protocol and records
//! everything. It sees metadata (who sends to whom, when, how much) by design; the content is
//! MLS ciphertext. Tokens do not expire (a simulation, not a deployment). Bodies are capped by
//! [`Limits`]; an oversize body is refused with 413 before it is stored.

use crate::commit::Db;
use crate::scan::{ProviderScheme, ScanCtx};
use crate::store::{Review, Store, StoreError, ViewRecord};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{StatusCode, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Context string of the authentication signature.
pub const AUTH_CONTEXT: &[u8] = b"scanlab-auth-v1";

/// Size limits on what the provider accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest attachment blob, in bytes (default 32 MiB).
    pub max_blob: usize,
    /// Largest JSON request, in bytes (default 4 MiB).
    pub max_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blob: 32 << 20,
            max_request: 4 << 20,
        }
    }
}

/// The provider's state.
pub struct Provider {
    db: Db,
    /// Token → account. Tokens never change once issued, so a cache in front of the store
    /// saves a database round trip (and a commit wait) on every authenticated request.
    tokens: RwLock<HashMap<String, String>>,
    nonces: Mutex<HashMap<String, [u8; 32]>>,
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
    /// Nothing there.
    #[error("not found")]
    NotFound,
    /// A field is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Over a size limit.
    #[error("request of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider failed (a scheme's scan panicked); nothing about the request is wrong.
    #[error("internal error: {0}")]
    Internal(String),
    /// The deployment's scheme refused the request.
    #[error("scheme: {0}")]
    Scheme(String),
}

impl ApiError {
    /// The HTTP status for each error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::AuthFailed => StatusCode::UNAUTHORIZED,
            ApiError::Conflict => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::Scheme(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
        Arc::new(Provider {
            db: Db::start(store),
            tokens: RwLock::new(HashMap::new()),
            nonces: Mutex::new(HashMap::new()),
            limits,
            scheme,
        })
    }

    /// The deployed scheme's name (`e2ee` when none).
    pub fn scheme_name(&self) -> &str {
        self.scheme.as_ref().map_or("e2ee", |s| s.name())
    }

    /// The storage handle (group commit), for scheme provider halves and tools.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The recorded provider view. Blocks; call it outside async code.
    pub fn view(&self) -> Result<Vec<ViewRecord>, StoreError> {
        self.db.call_blocking(|s| s.view())
    }

    /// The review queue: what was disclosed to the provider's reviewers. Blocks.
    pub fn reviews(&self) -> Result<Vec<Review>, StoreError> {
        self.db.call_blocking(|s| s.reviews())
    }

    async fn owner(&self, token: &str) -> Result<Option<String>, StoreError> {
        if let Some(n) = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
        {
            return Ok(Some(n.clone()));
        }
        let t = token.to_string();
        let owner = self.db.call(move |s| s.token_owner(&t)).await?;
        if let Some(n) = &owner {
            self.tokens
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(token.to_string(), n.clone());
        }
        Ok(owner)
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

#[derive(serde::Deserialize)]
struct RegisterReq {
    name: String,
    identity_key: String,
}

async fn register(
    State(p): State<Arc<Provider>>,
    Json(r): Json<RegisterReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key: [u8; 32] = hex::decode(&r.identity_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| ApiError::BadRequest("identity_key must be 32 bytes of hex".into()))?;
    VerifyingKey::from_bytes(&key)
        .map_err(|_| ApiError::BadRequest("identity_key is not an Ed25519 key".into()))?;
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
    if !p.db.call(move |s| s.register(&name, &key)).await? {
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
    let name = r.name.clone();
    if p.db.call(move |s| s.identity_key(&name)).await?.is_none() {
        return Err(ApiError::AuthFailed);
    }
    let mut nonce = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    p.nonces
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(r.name, nonce);
    Ok(Json(serde_json::json!({ "nonce": hex::encode(nonce) })))
}

#[derive(serde::Deserialize)]
struct TokenReq {
    name: String,
    signature: String,
}

async fn token(
    State(p): State<Arc<Provider>>,
    Json(r): Json<TokenReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let nonce = p
        .nonces
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&r.name)
        .ok_or(ApiError::AuthFailed)?;
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
    let msg = [AUTH_CONTEXT, &nonce[..]].concat();
    key.verify(&msg, &Signature::from_bytes(&sig))
        .map_err(|_| ApiError::AuthFailed)?;
    let mut t = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut t);
    let t = hex::encode(t);
    let (tc, name) = (t.clone(), r.name.clone());
    p.db.call(move |s| s.put_token(&tc, &name)).await?;
    p.tokens
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(t.clone(), r.name);
    Ok(Json(serde_json::json!({ "token": t })))
}

#[derive(serde::Deserialize)]
struct KeyPackagesReq {
    packages: Vec<String>,
}

async fn publish_key_packages(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    Json(r): Json<KeyPackagesReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pk = r
        .packages
        .iter()
        .map(|s| b64(s, "package"))
        .collect::<Result<Vec<_>, _>>()?;
    let n = pk.len();
    p.db.call(move |s| s.add_key_packages(&me, &pk)).await?;
    Ok(Json(serde_json::json!({ "stored": n })))
}

async fn take_key_package(
    State(p): State<Arc<Provider>>,
    _me: Authed,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pk =
        p.db.call(move |s| s.take_key_package(&name))
            .await?
            .ok_or(ApiError::NotFound)?;
    Ok(Json(serde_json::json!({ "package": B64.encode(pk) })))
}

#[derive(serde::Deserialize)]
struct SendReq {
    group: String,
    recipients: Vec<String>,
    payload: String,
    /// What a scheme's client half adds to each message (S2: the escrow envelope).
    #[serde(default)]
    scheme: Option<serde_json::Value>,
}

async fn send(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    Json(r): Json<SendReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let payload = b64(&r.payload, "payload")?;
    if let Some(scheme) = &p.scheme {
        let derived = scheme.on_message(&me, r.scheme.as_ref())?;
        derive(&p, &me, "POST /v1/messages", derived);
    }
    let id =
        p.db.call(move |s| {
            for name in &r.recipients {
                if s.identity_key(name)?.is_none() {
                    return Ok(Err(name.clone()));
                }
            }
            s.enqueue(&r.group, &me, &r.recipients, &payload).map(Ok)
        })
        .await?
        .map_err(|name| ApiError::BadRequest(format!("unknown recipient {name:?}")))?;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn queue(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let msgs = p.db.call(move |s| s.pending(&me, 1000)).await?;
    let out: Vec<_> = msgs
        .into_iter()
        .map(|m| serde_json::json!({ "id": m.id, "group": m.group, "sender": m.sender, "payload": B64.encode(m.payload) }))
        .collect();
    Ok(Json(serde_json::json!({ "messages": out })))
}

#[derive(serde::Deserialize)]
struct AckReq {
    ids: Vec<i64>,
}

async fn ack(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    Json(r): Json<AckReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let n = p.db.call(move |s| s.ack(&me, &r.ids)).await?;
    Ok(Json(serde_json::json!({ "acked": n })))
}

async fn put_blob(
    State(p): State<Arc<Provider>>,
    _me: Authed,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.len() > p.limits.max_blob {
        return Err(ApiError::TooLarge(body.len()));
    }
    let id = p.db.call(move |s| s.put_blob(&body)).await?;
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

/// Records every request before any handler sees it: the provider view.
///
/// The record is queued before the handler runs and the answer waits for it to be committed,
/// so no request is ever answered without its record on disk (usually the handler's own
/// commit already covers it: the writer is first in, first out).
async fn record(
    State(p): State<Arc<Provider>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let is_blob = parts.uri.path().starts_with("/v1/blobs");
    let limit = if is_blob {
        p.limits.max_blob
    } else {
        p.limits.max_request
    };
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit + 1))?;
    let who = match bearer(&parts) {
        Some(t) => p.owner(&t).await?,
        None => None,
    };
    let r = ViewRecord {
        seq: 0,
        at_ms: now_ms(),
        who,
        endpoint: format!("{} {}", parts.method, parts.uri.path()),
        len: bytes.len() as i64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        body: (!is_blob).then(|| bytes.to_vec()),
        extra: None,
    };
    let recorded = p.db.call(move |s| s.record(&r));
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    recorded.await?;
    Ok(resp)
}

/// Records what a scheme's provider half derived from a request (a hash, a verdict, a
/// decrypted digest) as its own provider-view row, `DERIVED <endpoint>`, with no body.
fn derive(p: &Provider, who: &str, endpoint: &str, derived: Option<serde_json::Value>) {
    let Some(extra) = derived else { return };
    let r = ViewRecord {
        seq: 0,
        at_ms: now_ms(),
        who: Some(who.to_string()),
        endpoint: format!("DERIVED {endpoint}"),
        len: 0,
        sha256: String::new(),
        body: None,
        extra: Some(extra.to_string()),
    };
    // Ordered before the handler's own write, whose commit the answer waits for.
    drop(p.db.call(move |s| s.record(&r)));
}

async fn scheme_info(State(p): State<Arc<Provider>>) -> Json<serde_json::Value> {
    Json(match &p.scheme {
        Some(s) => serde_json::json!({ "name": s.name(), "params": s.public_params() }),
        None => serde_json::json!({ "name": "e2ee", "params": {} }),
    })
}

async fn scan(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scheme = p.scheme.clone().ok_or(ApiError::NotFound)?;
    let ctx = ScanCtx {
        db: p.db.clone(),
        who: me.clone(),
    };
    // Scanning hashes images or calls an enclave: off the async threads.
    let out = tokio::task::spawn_blocking(move || scheme.scan(&ctx, &body))
        .await
        .map_err(|e| ApiError::Internal(format!("the scheme's scan failed: {e}")))??;
    derive(&p, &me, "POST /v1/scan", out.derived);
    // Wait for the derived record (and the request's own record) to be durable.
    p.db.call(|_| Ok(())).await?;
    Ok(Json(out.reply))
}

#[derive(serde::Deserialize)]
struct ReviewReq {
    blob: String,
    reason: String,
    image: String,
}

async fn review(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    Json(r): Json<ReviewReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let image = b64(&r.image, "image")?;
    if let Some(scheme) = &p.scheme {
        scheme.on_review(&me, &r.reason, &image)?;
    }
    let item = Review {
        id: 0,
        at_ms: now_ms(),
        submitter: me,
        blob: r.blob,
        reason: r.reason,
        image,
    };
    let id = p.db.call(move |s| s.put_review(&item)).await?;
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
        .route("/v1/messages", post(send))
        .route("/v1/queue", get(queue))
        .route("/v1/queue/ack", post(ack))
        .route("/v1/blobs", put(put_blob))
        .route("/v1/blobs/{id}", get(get_blob))
        .route("/v1/scheme", get(scheme_info))
        .route("/v1/scan", post(scan))
        .route("/v1/review", post(review))
        .layer(axum::middleware::from_fn_with_state(p.clone(), record))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(p)
}
