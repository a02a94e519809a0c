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
//!
//! Delivery is at-least-once with message ids: the client drops ids it has seen. Nothing is
//! deleted from a queue until its owner acknowledges it, and every write is committed to SQLite
//! (WAL, `synchronous = FULL`) before the provider answers.
//!
//! # Threat assumptions and limits
//! The provider is honest-but-curious for the baseline: it follows the protocol and records
//! everything. It sees metadata (who sends to whom, when, how much) by design; the content is
//! MLS ciphertext. Tokens do not expire (a simulation, not a deployment). Bodies are capped by
//! [`Limits`]; an oversize body is refused with 413 before it is stored.

use crate::store::{Store, StoreError, ViewRecord};
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
use std::sync::{Arc, Mutex};

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
    store: Mutex<Box<dyn Store>>,
    nonces: Mutex<HashMap<String, [u8; 32]>>,
    limits: Limits,
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
}

impl ApiError {
    /// The HTTP status for each error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::AuthFailed => StatusCode::UNAUTHORIZED,
            ApiError::Conflict => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
    /// A provider over a store.
    pub fn new(store: Box<dyn Store>, limits: Limits) -> Arc<Self> {
        Arc::new(Provider {
            store: Mutex::new(store),
            nonces: Mutex::new(HashMap::new()),
            limits,
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Box<dyn Store>> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions), so a
        // poisoned lock is safe to keep using.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The recorded provider view.
    pub fn view(&self) -> Result<Vec<ViewRecord>, StoreError> {
        self.store().view()
    }
}

/// The authenticated account of a request.
pub struct Authed(pub String);

impl FromRequestParts<Arc<Provider>> for Authed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, p: &Arc<Provider>) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        p.store()
            .token_owner(&token)?
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
    if !p.store().register(&r.name, &key)? {
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
    if p.store().identity_key(&r.name)?.is_none() {
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
    let key = p
        .store()
        .identity_key(&r.name)?
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
    p.store().put_token(&t, &r.name)?;
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
    p.store().add_key_packages(&me, &pk)?;
    Ok(Json(serde_json::json!({ "stored": pk.len() })))
}

async fn take_key_package(
    State(p): State<Arc<Provider>>,
    _me: Authed,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pk = p
        .store()
        .take_key_package(&name)?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(serde_json::json!({ "package": B64.encode(pk) })))
}

#[derive(serde::Deserialize)]
struct SendReq {
    group: String,
    recipients: Vec<String>,
    payload: String,
}

async fn send(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
    Json(r): Json<SendReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let payload = b64(&r.payload, "payload")?;
    let mut store = p.store();
    for name in &r.recipients {
        if store.identity_key(name)?.is_none() {
            return Err(ApiError::BadRequest(format!("unknown recipient {name:?}")));
        }
    }
    let id = store.enqueue(&r.group, &me, &r.recipients, &payload)?;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn queue(
    State(p): State<Arc<Provider>>,
    Authed(me): Authed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let msgs = p.store().pending(&me, 1000)?;
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
    let n = p.store().ack(&me, &r.ids)?;
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
    let id = p.store().put_blob(&body)?;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn get_blob(
    State(p): State<Arc<Provider>>,
    _me: Authed,
    Path(id): Path<String>,
) -> Result<Vec<u8>, ApiError> {
    p.store().get_blob(&id)?.ok_or(ApiError::NotFound)
}

/// Records every request before any handler sees it: the provider view.
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
        Some(t) => p.store().token_owner(&t)?,
        None => None,
    };
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    p.store().record(&ViewRecord {
        seq: 0,
        at_ms,
        who,
        endpoint: format!("{} {}", parts.method, parts.uri.path()),
        len: bytes.len() as i64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        body: (!is_blob).then(|| bytes.to_vec()),
        extra: None,
    })?;
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
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
        .layer(axum::middleware::from_fn_with_state(p.clone(), record))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(p)
}
