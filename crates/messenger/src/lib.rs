//! scanlab's end-to-end encrypted messenger: the substrate every detection scheme modifies.
//!
//! The open letter defends one property: "only the sender and the recipient will be able to
//! understand the contents of a communication". Each scheme's cost to privacy can only be
//! measured against a messenger that really has it, with everything the provider receives
//! recorded. This crate is that messenger's provider today: [`provider`] is a real axum HTTP
//! service over SQLite ([`store`]), and every request it receives passes through one recording
//! layer into the **provider view** ([`store::ViewRecord`]), from which the privacy figures are
//! computed. [`mls`] is the client's end-to-end encryption: openmls groups with persistent
//! state, and Signal-style encrypted attachments. Wiring the client to the provider (HTTP and
//! in-process transports, the client CLI) is the next step (see the messenger issue).
//!
//! # What this crate does not do
//! No detection: schemes plug in on top. No TLS: tests and simulations run on loopback.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod client;
pub mod mls;
pub mod provider;
pub mod store;

pub use provider::{Limits, Provider, router};
pub use store::{SqliteStore, Store, StoreError, ViewRecord};

/// Serves `provider` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    provider: std::sync::Arc<Provider>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(provider))
        .with_graceful_shutdown(shutdown)
        .await
}
