//! The recorder: the one path by which every party's bytes reach its view.
//!
//! Every party of a deployment (the provider, an enclave, an escrow authority, a matching
//! organisation, a moderator) keeps a **view**: a [`ViewRecord`] for every body it receives and
//! every body it sends, and for everything it derives or stores from them. The privacy figures
//! are computed from these views alone, so a view must be complete and must not be writable
//! around.
//!
//! # How a request is recorded
//! [`record_layer`] is an axum middleware in front of every route of a party's router:
//! 1. It reads the request body (within the party's limit) and makes its `received` record,
//!    which it does not write yet: it hands it to the handler as a [`Pending`] record.
//! 2. The handler's first storage write goes through [`Pending::write_with`], which writes the
//!    pending record (and any [`RecordKind::Derived`] records staged so far) **in the same job,
//!    hence the same transaction**, as the state change. A job that fails is undone as a whole,
//!    and the request record goes back to pending, so a refused request is still recorded.
//! 3. After the handler, the layer reads the response body and writes its `sent` record (and
//!    the request record, if no write took it), and answers only once that is committed.
//!
//! So a state change is never on disk without the request that caused it, and no byte leaves a
//! party before the record of it is durable.
//!
//! Blob bodies and queue pages are recorded by length and digest only: the party's own store
//! already holds those bytes (blobs), or the messages they are made of (queue pages, whose
//! message ids are kept in `extra`).

use crate::commit::Db;
use crate::store::{RecordKind, Store, StoreError, ViewRecord};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What the recording layer needs from a party's service.
pub trait Recorded: Send + Sync + 'static {
    /// The party's storage.
    fn db(&self) -> &Db;
    /// The largest request body accepted on `path`.
    fn body_limit(&self, path: &str) -> usize;
    /// Who sent the request, if it is authenticated.
    fn who(&self, parts: &Parts)
    -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Whether bodies on `path` are kept in full (otherwise length and digest only).
    fn keeps_body(&self, path: &str) -> bool {
        !path.starts_with("/v1/blobs")
    }
    /// Whether `path` needs an authenticated sender. Such a request without one is refused
    /// before its body is read.
    fn requires_auth(&self, _path: &str) -> bool {
        false
    }
    /// The largest body accepted from a sender not (yet) authenticated.
    fn public_body_limit(&self) -> usize {
        64 << 10
    }
    /// Called for a request refused with no authenticated sender; returning `true` means it
    /// is counted and not recorded (so a flood of refusals costs no disk), `false` that it
    /// is recorded like any other.
    fn count_refusal(&self) -> bool {
        false
    }
}

/// How long a request body may take to arrive.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Records that are waiting to be written with the next state change of a request: the
/// request itself, and what the handler derived so far.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<Vec<ViewRecord>>>);

impl Pending {
    /// A pending set holding `r`.
    pub fn new(r: ViewRecord) -> Pending {
        Pending(Arc::new(Mutex::new(vec![r])))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ViewRecord>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stages a record (typically [`RecordKind::Derived`]) to be written with the next write.
    pub fn stage(&self, r: ViewRecord) {
        self.lock().push(r);
    }

    /// Whether the request's own record is still waiting (no write has taken it).
    fn unwritten(&self) -> bool {
        self.lock().iter().any(|r| r.kind == RecordKind::Received)
    }

    fn take(&self) -> Vec<ViewRecord> {
        std::mem::take(&mut *self.lock())
    }

    fn put_back(&self, mut rs: Vec<ViewRecord>) {
        let mut g = self.lock();
        rs.append(&mut g);
        *g = rs;
    }

    /// A job for the writer that first writes every pending record, then runs `op`, all in one
    /// savepoint of one transaction. If `op` fails the records go back to pending (the job's
    /// writes are undone), so they are written later with the layer's own record.
    pub fn job<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static {
        let records = self.take();
        let me = self.clone();
        move |s: &mut dyn Store| {
            let written = records.iter().try_for_each(|r| s.record(r));
            let out = written.and_then(|()| op(s));
            if out.is_err() {
                me.put_back(records);
            }
            out
        }
    }

    /// Runs `op` on `db` together with every pending record (async).
    pub async fn write_with<R: Send + 'static>(
        &self,
        db: &Db,
        op: impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        db.call(self.job(op)).await
    }

    /// [`Pending::write_with`] for blocking code (scheme halves).
    pub fn write_with_blocking<R: Send + 'static>(
        &self,
        db: &Db,
        op: impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        db.call_blocking(self.job(op))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Pending {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Pending>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Set on a response by a handler whose body the party's store already holds (a queue page):
/// the layer then records the body's length and digest, with this as `extra`, and not the body.
#[derive(Clone, Debug)]
pub struct SentSummary(pub String);

/// The endpoint name of a request: `METHOD /path`.
pub fn endpoint(parts: &Parts) -> String {
    format!("{} {}", parts.method, parts.uri.path())
}

/// Records what a party derived from a request: its true length and digest, and the bytes.
pub fn derived(who: Option<String>, endpoint: &str, value: &serde_json::Value) -> ViewRecord {
    ViewRecord::of(
        RecordKind::Derived,
        who,
        endpoint,
        value.to_string().as_bytes(),
        true,
    )
}

/// A refusal from the layer itself, as a JSON error.
fn refusal(status: axum::http::StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// The recording middleware: see the module docs. Use with
/// `axum::middleware::from_fn_with_state(party, record_layer::<P>)`.
pub async fn record_layer<P: Recorded>(
    axum::extract::State(p): axum::extract::State<Arc<P>>,
    req: Request,
    next: Next,
) -> Response {
    match record_inner(p, req, next).await {
        Ok(r) => r,
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn record_inner<P: Recorded>(
    p: Arc<P>,
    req: Request,
    next: Next,
) -> Result<Response, StoreError> {
    use axum::http::StatusCode;
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    // Who is asking is known from the headers alone, so nothing of the body is read (nor
    // memory spent on it) for a sender who is not allowed to send it.
    let who = p.who(&parts).await?;
    if who.is_none() && p.requires_auth(&path) {
        p.count_refusal();
        return Ok(refusal(
            StatusCode::UNAUTHORIZED,
            "authentication required".into(),
        ));
    }
    let limit = match who {
        Some(_) => p.body_limit(&path),
        None => p.public_body_limit().min(p.body_limit(&path)),
    };
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return Ok(refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request over the limit of {limit} bytes"),
            ));
        }
        Err(_) => {
            return Ok(refusal(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time".into(),
            ));
        }
    };
    let ep = endpoint(&parts);
    let keep = p.keeps_body(&path);
    let pending = Pending::new(ViewRecord::of(
        RecordKind::Received,
        who.clone(),
        &ep,
        &bytes,
        keep,
    ));
    parts.extensions.insert(pending.clone());
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if who.is_none() && !resp.status().is_success() && pending.unwritten() && p.count_refusal() {
        // A refused login or registration that changed nothing: counted, not recorded. (One
        // whose handler wrote something has its request on record already, and gets its
        // answer recorded too.)
        return Ok(resp);
    }
    let (rparts, rbody) = resp.into_parts();
    let out: Bytes = axum::body::to_bytes(rbody, usize::MAX)
        .await
        .unwrap_or_default();
    let mut sent = ViewRecord::of(RecordKind::Sent, who, &ep, &out, keep);
    if let Some(SentSummary(extra)) = rparts.extensions.get::<SentSummary>() {
        sent.body = None;
        sent.extra = Some(extra.clone());
    }
    pending.stage(sent);
    pending.write_with(p.db(), |_| Ok(())).await?;
    Ok(Response::from_parts(rparts, Body::from(out)))
}

/// A party's recorded view outside HTTP: for parties that receive bytes by another path (an
/// escrow authority handed a provider's records), so that what they receive and derive lands
/// in a view of the same format, through the same writer.
pub struct Recorder {
    db: Db,
}

impl Recorder {
    /// Records into `store`.
    pub fn new(store: Box<dyn Store>) -> Recorder {
        Recorder {
            db: Db::start(store),
        }
    }

    /// Appends one record and waits for it to be durable.
    pub fn record(&self, r: ViewRecord) -> Result<(), StoreError> {
        self.db.call_blocking(move |s| s.record(&r))
    }

    /// The view so far.
    pub fn view(&self) -> Result<Vec<ViewRecord>, StoreError> {
        self.db.call_blocking(|s| s.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[test]
    fn a_request_whose_write_fails_is_recorded_once_and_a_kept_write_takes_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::start(Box::new(SqliteStore::open(dir.path()).unwrap()));
        let rec = |ep: &str| ViewRecord::of(RecordKind::Received, None, ep, b"body", true);
        // The write fails after its record: both are undone, and the record waits again.
        let p = Pending::new(rec("POST /a"));
        let failed = p.write_with_blocking(&db, |s| {
            s.enqueue("g", "x", &["y".into()], b"m", None)?;
            Err::<(), _>(StoreError::WriterGone)
        });
        assert!(failed.is_err());
        assert!(p.unwritten(), "the record went back to pending");
        assert!(db.call_blocking(|s| s.view()).unwrap().is_empty());
        assert!(db.call_blocking(|s| s.pending("y", 10)).unwrap().is_empty());
        p.write_with_blocking(&db, |_| Ok(())).unwrap();
        // A write that succeeds takes the record with it, in the same job.
        let q = Pending::new(rec("POST /b"));
        q.write_with_blocking(&db, |s| s.enqueue("g", "x", &["y".into()], b"m", None))
            .unwrap();
        assert!(!q.unwritten());
        let view = db.call_blocking(|s| s.view()).unwrap();
        let eps: Vec<&str> = view.iter().map(|r| r.endpoint.as_str()).collect();
        assert_eq!(eps, ["POST /a", "POST /b"]);
    }
}
