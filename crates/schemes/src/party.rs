//! What every party beside the provider shares (S5's enclave, S8's matching organisations):
//! a caller token that only the provider holds, and the provider's link to the party, either
//! in process through the party's own router and recording layer (simulations) or over HTTP
//! to a separate process (`scanlab enclave`, `scanlab matcher`).
//!
//! A party that answers anyone would be a list-membership oracle for the whole network, so
//! each one writes a fresh token at start (`DATA/caller.token`, 0600) and refuses every
//! authenticated route to a caller without it.

use crate::SchemeError;
use scanlab_messenger::client::{LocalTransport, Transport};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The caller token's file name in a party's data directory.
pub const CALLER_TOKEN_FILE: &str = "caller.token";

/// A party's check of its caller: the SHA-256 of the token it issued.
pub struct Guard {
    digest: [u8; 32],
}

impl Guard {
    /// Issues a fresh token, written to `data/caller.token` (0600); returns the guard and
    /// the token.
    pub fn issue(data: &Path) -> Result<(Guard, Zeroizing<String>), SchemeError> {
        use rand::RngCore;
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(raw.as_mut());
        let token = Zeroizing::new(hex::encode(raw.as_ref()));
        std::fs::create_dir_all(data)
            .map_err(|e| SchemeError::Config(format!("{}: {e}", data.display())))?;
        crate::write_secret_file(&data.join(CALLER_TOKEN_FILE), token.as_bytes())?;
        Ok((
            Guard {
                digest: Sha256::digest(token.as_bytes()).into(),
            },
            token,
        ))
    }

    /// `Some("provider")` for a request bearing the token, compared in constant time.
    pub fn who(&self, parts: &axum::http::request::Parts) -> Option<String> {
        use subtle::ConstantTimeEq;
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?;
        let d: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        bool::from(d.ct_eq(&self.digest)).then(|| "provider".to_string())
    }
}

/// Reads a caller token file, naming the flag that gives it on failure.
pub fn read_token(path: &Path, flag: &str) -> Result<Zeroizing<String>, SchemeError> {
    Ok(Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| {
                SchemeError::Config(format!(
                    "reading the caller token {}: {e} ({flag})",
                    path.display()
                ))
            })?
            .trim()
            .to_string(),
    ))
}

/// How the provider reaches a party, and the caller token it authenticates with.
#[derive(Clone)]
pub struct Link {
    to: Route,
    token: Arc<Zeroizing<String>>,
}

#[derive(Clone)]
enum Route {
    Local(Arc<LocalTransport>),
    Http(String),
}

/// Runs a blocking call on its own thread, so it is safe from async code too.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| s.spawn(f).join().expect("HTTP thread panicked"))
}

fn upstream(e: impl std::fmt::Display) -> SchemeError {
    SchemeError::Party(e.to_string())
}

impl Link {
    /// An in-process link through the party's own router (and so its recording layer),
    /// minus the socket.
    pub fn local(router: axum::Router, token: Zeroizing<String>) -> Link {
        Link {
            to: Route::Local(Arc::new(LocalTransport::from_router(router))),
            token: Arc::new(token),
        }
    }

    /// A separate process, by base URL, with its caller token.
    pub fn http(url: &str, token: Zeroizing<String>) -> Link {
        Link {
            to: Route::Http(url.trim_end_matches('/').to_string()),
            token: Arc::new(token),
        }
    }

    /// `GET path`, unauthenticated, as JSON.
    pub fn get(&self, path: &str) -> Result<Value, SchemeError> {
        off_runtime(|| match &self.to {
            Route::Local(t) => t.get(path, None).map_err(upstream),
            Route::Http(url) => reqwest::blocking::get(format!("{url}{path}"))
                .map_err(|e| SchemeError::PartyUnreachable(e.to_string()))?
                .error_for_status()
                .and_then(|r| r.json())
                .map_err(upstream),
        })
    }

    /// `POST path` with `body`, bearing the caller token; the answer as JSON. A party that
    /// answers with an error is [`SchemeError::Party`] (a 502 to the client), one that
    /// cannot be reached [`SchemeError::PartyUnreachable`] (a 503).
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, SchemeError> {
        let token: &str = &self.token;
        off_runtime(|| match &self.to {
            Route::Local(t) => t.post(path, Some(token), body).map_err(upstream),
            Route::Http(url) => reqwest::blocking::Client::new()
                .post(format!("{url}{path}"))
                .bearer_auth(token)
                .json(body)
                .send()
                .map_err(|e| SchemeError::PartyUnreachable(e.to_string()))
                .and_then(|r| {
                    if r.status().is_success() {
                        r.json().map_err(upstream)
                    } else {
                        Err(SchemeError::Party(format!(
                            "{}: {}",
                            r.status(),
                            r.text().unwrap_or_default()
                        )))
                    }
                }),
        })
    }
}
