//! S0 `e2ee`: MLS with nothing added, the baseline every other scheme is measured against.
//!
//! - **Client half:** nothing beyond end-to-end encryption.
//! - **Provider half:** nothing; it relays ciphertext. What it still sees, for every scheme, is
//!   metadata: who sends to whom, when, and how much (all in the provider view).
//! - **On a match:** there is no matching.

use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::AttachmentRef;
use scanlab_messenger::provider::ApiError;
use scanlab_messenger::scan::{ClientScheme, ProviderScheme, ScanCtx, ScanOutcome};
use serde_json::{Value, json};

/// S0's client half: sends nothing extra.
pub struct Client;

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "e2ee"
    }
    fn scan_request(
        &mut self,
        _image: &[u8],
        _attachment: &AttachmentRef,
    ) -> Result<Option<Value>, ClientError> {
        Ok(None)
    }
}

/// S0's provider half: accepts no scan requests.
pub struct Provider;

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "e2ee"
    }
    fn public_params(&self) -> Value {
        json!({})
    }
    fn scan(&self, _ctx: &ScanCtx, _request: &Value) -> Result<ScanOutcome, ApiError> {
        Err(ApiError::NotFound)
    }
}
