//! `scanlab demo`: a web page on which two people chat, and every other party of a detection
//! scheme shows, live, what its own code received.
//!
//! The page is the real system, not an animation: each scheme is deployed as the evaluation
//! deploys it ([`scanlab_eval::attacks::deploy`]: a real provider with the scheme's provider
//! half over SQLite, and each other party the scheme runs, enclave or matching organisations,
//! with its own recording layer), and Alice and Bob are real MLS clients
//! ([`scanlab_messenger::client::Client`]) calling the provider's real router. Each party's
//! pane lists the records its recorder kept and what the evaluation's scheme-blind analyst
//! ([`scanlab_eval::analyst`]) reads in each: nothing, a hash, a rebuilt thumbnail, or the
//! photo ([`panes`]).
//!
//! The attack buttons re-use the evaluation's code: poisoning adds the protest poster to the
//! list (the evaluation's poisoning), stealing a key reads the provider's records with a key
//! a party of the deployment holds (its compromise analysis), the provider's lies and the
//! rogue enclave run [`scanlab_eval::attacks::run`] and [`scanlab_eval::tee::run`], and the
//! evading copy is [`scanlab_attack::whitebox::evade`] on a listed photo.
//!
//! # Safety
//! The server binds loopback unless told otherwise ([`DemoConfig::listen`]); the CLI warns on
//! any other address. Uploads are limited to [`MAX_UPLOAD`] bytes and go through the same
//! client and provider code, with the same limits and hostile-input handling, as every
//! message. The gallery is the benign dev corpus: the "listed" photos are stand-ins, which is
//! itself the point, since the system matches whatever list it is handed.

#![warn(missing_docs)]

pub mod deployment;
pub mod panes;
mod server;

pub use server::{Demo, DemoConfig, MAX_TEXT, MAX_UPLOAD, Matrix, router, start};

/// What can go wrong in the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The corpus could not give the gallery.
    #[error("corpus: {0}")]
    Corpus(String),
    /// Deploying or driving the scheme failed.
    #[error("{0}")]
    Eval(#[from] scanlab_eval::EvalError),
    /// A client failed.
    #[error("messenger: {0}")]
    Client(#[from] scanlab_messenger::client::ClientError),
    /// A party's store failed.
    #[error("store: {0}")]
    Store(#[from] scanlab_messenger::StoreError),
    /// A scheme could not be found or built.
    #[error("scheme: {0}")]
    Scheme(#[from] scanlab_schemes::SchemeError),
    /// The page asked for something malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// An attack could not run.
    #[error("attack: {0}")]
    Attack(String),
    /// The evaluation matrix given could not be read.
    #[error("results: {0}")]
    Results(String),
    /// Binding or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The deployment's worker is gone.
    #[error("internal: {0}")]
    Internal(&'static str),
}
