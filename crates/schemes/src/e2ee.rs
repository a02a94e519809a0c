//! S0 `e2ee`: MLS with nothing added, the baseline every other scheme is measured against.
//!
//! - **Client half:** nothing beyond end-to-end encryption.
//! - **Provider half:** nothing; it relays ciphertext. What it still sees, for every scheme, is
//!   metadata: who sends to whom, when, and how much (all in the provider view).
//! - **On a match:** there is no matching.

use crate::{Scheme, SchemeError, SimInputs, Simulation};
use scanlab_messenger::scan::{ClientScheme, ProviderScheme};
use serde_json::{Value, json};
use std::sync::Arc;

/// S0's descriptor.
pub struct E2ee;

/// S0 takes no configuration.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl Scheme for E2ee {
    fn code(&self) -> &'static str {
        "S0"
    }
    fn name(&self) -> &'static str {
        "e2ee"
    }
    fn summary(&self) -> &'static str {
        "MLS end-to-end encryption with nothing added: the provider relays ciphertext"
    }
    fn explanation(&self) -> &'static str {
        "The baseline: MLS end-to-end encryption and nothing added. The provider relays ciphertext and stores encrypted attachment blobs; it sees who writes to whom, when, and how large each message is, but no content. Nothing is matched, so nothing is detected and nothing innocent is flagged."
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let Config {} = crate::config(self.name(), config)?;
        Ok(Arc::new(Provider))
    }
    fn client(&self, _params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client))
    }
    fn simulate(&self, _inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        Ok(Simulation::provider_only(Arc::new(Provider)))
    }
}

/// S0's client half: sends nothing extra.
pub struct Client;

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "e2ee"
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
}
