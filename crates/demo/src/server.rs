//! The demo's HTTP side: the page, its JSON API, and the server-sent events that tell the
//! page to fetch a new snapshot.
//!
//! Every action runs on one worker thread that owns the [`Deployment`] (see its module), in
//! the order the page sent them; after each, the worker stores a fresh [`Snapshot`] and bumps
//! a version that every open `/api/events` stream announces.
//!
//! Routes: `GET /` (the page, its script and style: nothing from any other host),
//! `GET /api/state`, `GET /api/events`, `GET /gallery/{id}`, `POST /api/send`,
//! `POST /api/scheme`, `POST /api/attack`.

use crate::DemoError;
use crate::deployment::{AttackNote, Deployment, Gallery, Item, Role, Snapshot};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use scanlab_schemes::Registry;
use serde::Deserialize;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, mpsc};
use tokio::sync::{oneshot, watch};

/// Largest image the page may upload, in bytes.
pub const MAX_UPLOAD: usize = 8 << 20;
/// Longest text message, in bytes.
pub const MAX_TEXT: usize = 4096;

/// How to run the demo.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// The scheme deployed first (name or id).
    pub scheme: String,
    /// Corpus images to draw the gallery from.
    pub corpus: Vec<PathBuf>,
    /// Seed of the gallery's draw.
    pub seed: u64,
    /// An evaluation's output directory (its `matrix.csv`), for each scheme's column.
    pub results: Option<PathBuf>,
}

/// The evaluation's assessment matrix, as `scanlab evaluate` writes it (`matrix.csv`).
#[derive(Clone, Debug, Default)]
pub struct Matrix {
    /// Column headers after the first: `S3 device-hash`.
    pub schemes: Vec<String>,
    /// `(criterion, one cell per scheme)`.
    pub rows: Vec<(String, Vec<String>)>,
    /// Where it was read from.
    pub source: String,
}

impl Matrix {
    /// Reads `dir/matrix.csv`.
    pub fn read(dir: &Path) -> Result<Matrix, DemoError> {
        let file = dir.join("matrix.csv");
        let bad = |e: &dyn std::fmt::Display| {
            DemoError::Results(format!(
                "{}: {e} (give --results the directory `scanlab evaluate --out` wrote)",
                file.display()
            ))
        };
        let mut r = csv::Reader::from_path(&file).map_err(|e| bad(&e))?;
        let schemes: Vec<String> = r
            .headers()
            .map_err(|e| bad(&e))?
            .iter()
            .skip(1)
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(|e| bad(&e))?;
            let mut it = rec.iter();
            let name = it.next().unwrap_or_default().to_string();
            rows.push((name, it.map(str::to_string).collect()));
        }
        Ok(Matrix {
            schemes,
            rows,
            source: file.display().to_string(),
        })
    }

    /// The column of the scheme with id `code`.
    pub fn column(&self, code: &str) -> Option<Vec<(String, String)>> {
        let i = self
            .schemes
            .iter()
            .position(|h| h.split(' ').next() == Some(code))?;
        Some(
            self.rows
                .iter()
                .map(|(c, cells)| (c.clone(), cells.get(i).cloned().unwrap_or_default()))
                .collect(),
        )
    }
}

type Job = Box<dyn FnOnce(&mut World) -> Result<String, DemoError> + Send>;
/// A job and where its outcome goes.
type Queued = (Job, oneshot::Sender<Result<String, String>>);

/// What the worker thread owns.
struct World {
    registry: Registry,
    gallery: Gallery,
    dep: Deployment,
    matrix: Option<Matrix>,
    evading: Option<Vec<u8>>,
    uploads: usize,
}

/// A running demo: the worker's inbox, the latest snapshot, and the gallery's bytes.
pub struct Demo {
    jobs: std::sync::Mutex<mpsc::Sender<Queued>>,
    snapshot: Arc<RwLock<Arc<String>>>,
    version: watch::Receiver<u64>,
    images: Arc<RwLock<Vec<Item>>>,
}

impl Demo {
    async fn run(&self, job: Job) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .lock()
            .map_err(|_| "the worker is gone".to_string())?
            .send((job, tx))
            .map_err(|_| "the worker is gone".to_string())?;
        rx.await.map_err(|_| "the worker is gone".to_string())?
    }
}

/// Builds the gallery and the first deployment on a new worker thread, and returns the demo
/// once it is ready (or why it could not start).
pub fn start(cfg: &DemoConfig) -> Result<Arc<Demo>, DemoError> {
    let registry = scanlab_schemes::registry();
    let scheme = registry.get(&cfg.scheme)?;
    let matrix = cfg.results.as_deref().map(Matrix::read).transpose()?;
    let gallery = Gallery::from_corpus(&cfg.corpus, cfg.seed)?;
    let images = Arc::new(RwLock::new(gallery.items.clone()));
    let (jobs, inbox) = mpsc::channel::<Queued>();
    let (bump, version) = watch::channel(0u64);
    let snapshot = Arc::new(RwLock::new(Arc::new(String::new())));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), DemoError>>();
    let (snap, imgs) = (snapshot.clone(), images.clone());
    std::thread::Builder::new()
        .name("demo-worker".into())
        .spawn(move || {
            let dep = match Deployment::start(scheme, &gallery, false) {
                Ok(d) => d,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut world = World {
                registry,
                gallery,
                dep,
                matrix,
                evading: None,
                uploads: 0,
            };
            let mut n = 0u64;
            let mut publish = |world: &World, status: String| {
                n += 1;
                let text = match world_snapshot(world, n, status) {
                    Ok(s) => serde_json::to_string(&s).unwrap_or_default(),
                    Err(e) => {
                        serde_json::json!({ "version": n, "error": e.to_string() }).to_string()
                    }
                };
                if let Ok(mut w) = snap.write() {
                    *w = Arc::new(text);
                }
                if let Ok(mut w) = imgs.write() {
                    *w = world.gallery.items.clone();
                }
                let _ = bump.send(n);
            };
            publish(&world, format!("{} deployed", world.dep.scheme().name()));
            let _ = ready_tx.send(Ok(()));
            while let Ok((job, reply)) = inbox.recv() {
                let r = job(&mut world);
                let status = match &r {
                    Ok(s) => s.clone(),
                    Err(e) => format!("failed: {e}"),
                };
                publish(&world, status);
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
        })?;
    ready_rx
        .recv()
        .map_err(|_| DemoError::Internal("the worker stopped while starting"))??;
    Ok(Arc::new(Demo {
        jobs: std::sync::Mutex::new(jobs),
        snapshot,
        version,
        images,
    }))
}

fn world_snapshot(w: &World, version: u64, status: String) -> Result<Snapshot, DemoError> {
    let mut s = w.dep.snapshot(&w.registry)?;
    s.version = version;
    s.status = status;
    s.gallery = w
        .gallery
        .items
        .iter()
        .map(|i| (i.id.clone(), i.label.clone(), i.role))
        .collect();
    match &w.matrix {
        Some(m) => {
            s.matrix = m.column(w.dep.scheme().code());
            s.matrix_source = match s.matrix {
                Some(_) => format!("column {} of {}", w.dep.scheme().code(), m.source),
                None => format!("{} has no column for {}", m.source, w.dep.scheme().code()),
            };
        }
        None => {
            s.matrix_source = "no evaluation given: run `scanlab evaluate --out DIR`, then `scanlab demo --results DIR`".into()
        }
    }
    Ok(s)
}

/// The page's routes over a started demo.
pub fn router(demo: Arc<Demo>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/state", get(state))
        .route("/api/events", get(events))
        .route("/gallery/{id}", get(gallery))
        .route("/api/send", post(send))
        .route("/api/scheme", post(switch))
        .route("/api/attack", post(attack))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD / 3 * 4 + (64 << 10)))
        .with_state(demo)
}

const INDEX: &str = include_str!("../assets/index.html");
const APP: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; connect-src 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

async fn state(State(d): State<Arc<Demo>>) -> Response {
    let s = d.snapshot.read().map(|s| s.clone()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], (*s).clone()).into_response()
}

async fn events(
    State(d): State<Arc<Demo>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let rx = d.version.clone();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let v = *rx.borrow_and_update();
        Some((Ok(Event::default().event("update").data(v.to_string())), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn gallery(State(d): State<Arc<Demo>>, UrlPath(id): UrlPath<String>) -> Response {
    let item = d
        .images
        .read()
        .ok()
        .and_then(|g| g.iter().find(|i| i.id == id).cloned());
    match item {
        Some(i) => {
            let kind = if i.bytes.starts_with(b"\x89PNG") {
                "image/png"
            } else {
                "image/jpeg"
            };
            ([(header::CONTENT_TYPE, kind)], i.bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such image").into_response(),
    }
}

fn answer(r: Result<String, String>) -> Response {
    match r {
        Ok(s) => axum::Json(serde_json::json!({ "ok": true, "status": s })).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({ "ok": false, "error": e })),
        )
            .into_response(),
    }
}

fn bad(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({ "ok": false, "error": e.to_string() })),
    )
        .into_response()
}

type Body<T> = Result<axum::Json<T>, axum::extract::rejection::JsonRejection>;

/// The request's JSON, or why it is not.
fn json<T>(body: Body<T>) -> Result<T, String> {
    body.map(|axum::Json(b)| b).map_err(|e| e.body_text())
}

/// `POST /api/send`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    from: String,
    #[serde(default)]
    text: Option<String>,
    /// A gallery image's id.
    #[serde(default)]
    item: Option<String>,
    /// An uploaded file, base64.
    #[serde(default)]
    upload: Option<String>,
}

async fn send(State(d): State<Arc<Demo>>, body: Body<SendBody>) -> Response {
    let b = match json(body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let text = b.text.filter(|t| !t.trim().is_empty());
    if text.as_ref().is_some_and(|t| t.len() > MAX_TEXT) {
        return bad(format!("text over {MAX_TEXT} bytes"));
    }
    let upload = match b.upload.as_deref().map(|u| B64.decode(u)) {
        None => None,
        Some(Err(e)) => return bad(format!("upload: not base64: {e}")),
        Some(Ok(bytes)) if bytes.len() > MAX_UPLOAD => {
            return bad(format!(
                "upload: {} bytes is over the limit of {MAX_UPLOAD}",
                bytes.len()
            ));
        }
        Some(Ok(bytes)) => Some(bytes),
    };
    let (from, item) = (b.from, b.item);
    answer(
        d.run(Box::new(move |w: &mut World| {
            let image = match (item, upload) {
                (Some(_), Some(_)) => {
                    return Err(DemoError::BadRequest(
                        "either a gallery image or an upload".into(),
                    ));
                }
                (Some(id), None) => Some(
                    w.gallery
                        .get(&id)
                        .ok_or_else(|| DemoError::BadRequest(format!("no image {id:?}")))?
                        .bytes
                        .clone(),
                ),
                (None, Some(bytes)) => {
                    w.uploads += 1;
                    w.gallery.items.push(Item {
                        id: format!("upload-{}", w.uploads),
                        label: format!("upload {}", w.uploads),
                        role: Role::Uploaded,
                        bytes: bytes.clone(),
                    });
                    Some(bytes)
                }
                (None, None) => None,
            };
            w.dep.send(&from, text.as_deref(), image.as_deref())
        }))
        .await,
    )
}

/// `POST /api/scheme`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemeBody {
    name: String,
}

async fn switch(State(d): State<Arc<Demo>>, body: Body<SchemeBody>) -> Response {
    let name = match json(body) {
        Ok(b) => b.name,
        Err(e) => return bad(e),
    };
    answer(
        d.run(Box::new(move |w: &mut World| {
            let scheme = w.registry.get(&name)?;
            w.dep = Deployment::start(scheme, &w.gallery, false)?;
            Ok(format!(
                "{} {} deployed: a fresh provider, parties and users",
                w.dep.scheme().code(),
                w.dep.scheme().name()
            ))
        }))
        .await,
    )
}

/// `POST /api/attack`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttackBody {
    attack: String,
    #[serde(default)]
    holder: Option<String>,
}

async fn attack(State(d): State<Arc<Demo>>, body: Body<AttackBody>) -> Response {
    let b = match json(body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let job: Job = match b.attack.as_str() {
        "poison" => Box::new(|w: &mut World| {
            let scheme = w.dep.scheme().clone();
            w.dep = Deployment::start(scheme, &w.gallery, true)?;
            Ok("the list now holds the protest poster (a fresh deployment): send it, and see who the parties can name".into())
        }),
        "steal" => {
            let Some(holder) = b.holder else {
                return bad("steal: which holder's key (\"holder\")");
            };
            Box::new(move |w: &mut World| w.dep.steal(&holder))
        }
        "lies" => Box::new(|w: &mut World| {
            let all = w.registry.all();
            let i = all
                .iter()
                .position(|s| s.code() == w.dep.scheme().code())
                .unwrap_or(0);
            let pair = [all[i].clone(), all[(i + 1) % all.len()].clone()];
            let benign = benign(&w.gallery)?;
            let r = scanlab_eval::attacks::run(&pair, w.dep.list(), &benign)?;
            let rows: Vec<_> = r
                .rows
                .into_iter()
                .filter(|row| row.scheme == all[i].code())
                .map(|row| (row.attack, row.succeeded, row.detected_by))
                .collect();
            let n = rows.iter().filter(|r| r.1).count();
            w.dep.note_attack(AttackNote {
                title: "The provider lies to the clients (downgrade, changed parameters, forged disclose)".into(),
                rows,
                outcome: ("succeeded".into(), "stopped".into()),
            });
            Ok(format!("the provider's lies: {n} succeeded"))
        }),
        "rogue-enclave" => Box::new(|w: &mut World| {
            let code = w.dep.scheme().code().to_string();
            let images: Vec<Vec<u8>> = w
                .gallery
                .items
                .iter()
                .filter(|i| i.role == Role::Benign)
                .map(|i| i.bytes.clone())
                .collect();
            let t = scanlab_eval::tee::run(&code, w.dep.list(), &images)?;
            let rows = t
                .rows
                .into_iter()
                .map(|r| {
                    (
                        format!(
                            "{}: {} of {} photos opened by the enclave, {} reached review",
                            r.scenario, r.opened_by_enclave, r.sent, r.reached_review
                        ),
                        r.accepted,
                        r.refused_by,
                    )
                })
                .collect();
            w.dep.note_attack(AttackNote {
                title: "A rogue enclave (the evaluation's trust scenarios)".into(),
                rows,
                outcome: ("clients accepted it".into(), "clients refused it".into()),
            });
            Ok("the rogue-enclave scenarios ran on their own deployments".into())
        }),
        "evade" => Box::new(|w: &mut World| {
            let bytes = match &w.evading {
                Some(b) => b.clone(),
                None => {
                    let (png, distance) = crate::deployment::evading_copy(&w.gallery)?;
                    w.gallery.items.push(Item {
                        id: "evading".into(),
                        label: format!(
                            "evading copy of listed photo 1 ({distance} bits from its entry)"
                        ),
                        role: Role::Evading,
                        bytes: png.clone(),
                    });
                    w.evading = Some(png.clone());
                    png
                }
            };
            w.dep.send("alice", Some("an evading copy"), Some(&bytes))
        }),
        other => return bad(format!("unknown attack {other:?}")),
    };
    answer(d.run(job).await)
}

fn benign(g: &Gallery) -> Result<Vec<u8>, DemoError> {
    g.items
        .iter()
        .find(|i| i.role == Role::Benign)
        .map(|i| i.bytes.clone())
        .ok_or(DemoError::Internal("no benign photo"))
}
