//! scanlab's end-to-end encrypted messenger: the substrate every detection scheme modifies.
//!
//! The open letter defends one property: "only the sender and the recipient will be able to
//! understand the contents of a communication". Each scheme's cost to privacy can only be
//! measured against a messenger that really has it, with everything the provider receives
//! recorded.
//!
//! - [`provider`]: a real axum HTTP service over SQLite ([`store`]) with group commit
//!   ([`commit`]). Every request passes through one recording layer into the **provider view**
//!   ([`store::ViewRecord`]), from which the privacy figures are computed.
//! - [`mls`]: the client's end-to-end encryption, openmls groups with persistent state and
//!   Signal-style encrypted attachments.
//! - [`client`]: the client over a [`client::Transport`], HTTP for real use or in-process for
//!   simulations of many users.
//! - [`scan`]: where a detection scheme's client and provider halves plug in.
//! - [`record`]: the recorder every party's bytes pass through (the provider's, an enclave's,
//!   an escrow authority's), into views of one format.
//!
//! # What this crate does not do
//! No detection itself: schemes plug in through [`scan`]. No TLS: tests and simulations run on
//! loopback.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod client;
pub mod commit;
pub mod identity;
pub mod kt;
pub mod mls;
pub mod provider;
pub mod record;
pub mod scan;
pub mod store;

pub use provider::{Limits, Provider, router};
pub use record::Recorder;
pub use store::{RecordKind, Review, SqliteStore, Store, StoreError, ViewRecord};

/// How a party's HTTP server treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// A connection that takes longer than this to send a request's headers, or that sits
    /// idle this long between requests, is closed (slow-loris clients hold nothing).
    pub header_read_timeout: std::time::Duration,
    /// Most connections open at once; further ones are closed on accept.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: std::time::Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// Serves `provider` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    provider: std::sync::Arc<Provider>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(
        listener,
        router(provider),
        shutdown,
        ServeOptions::default(),
    )
    .await
}

/// Serves any party's `router` on `listener` until `shutdown` resolves, with header-read and
/// idle timeouts and a connection limit ([`ServeOptions`]). Request bodies have their own
/// deadline in the recording layer ([`record::BODY_TIMEOUT`]).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    opts: ServeOptions,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(opts.max_connections));
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => return Ok(()),
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            // Out of file descriptors and the like: back off briefly rather than spin.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(opts.header_read_timeout)
                .keep_alive(true);
            let _ = b.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Serves `router` on a fresh loopback port from a background thread with its own runtime, and
/// returns its base URL (`http://127.0.0.1:PORT`). The server lives as long as the process: for
/// tests, simulations and benchmarks that need a real socket without owning a runtime.
pub fn spawn_loopback(router: axum::Router) -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("scanlab-loopback".into())
        .spawn(move || {
            rt.block_on(async move {
                if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
                    let _ =
                        serve_router(l, router, std::future::pending(), ServeOptions::default())
                            .await;
                }
            })
        })?;
    Ok(url)
}
