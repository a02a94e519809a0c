//! The plugin shape of a scheme, and the registry that lists them.
//!
//! A scheme is one file: a descriptor implementing [`Scheme`] (its id, name, summary, and how to
//! build each half from typed configuration), its configuration type, its typed requests and
//! replies, and both halves. [`registry`] lists every scheme, one line each; `scanlab serve`,
//! `scanlab evaluate`, the report and the tests loop over it, so adding a scheme is adding its
//! file and its line. A test or a downstream crate can add its own with [`Registry::with`].

use crate::SchemeError;
use crate::seal::KeyPair;
use scanlab_hashlist::HashList;
use scanlab_messenger::scan::{ClientScheme, ProviderScheme};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a simulation gives a scheme to deploy itself with.
pub struct SimInputs<'a> {
    /// The list to match (the evaluation's stand-ins, poisoned with its poster).
    pub list: &'a HashList,
    /// The same list, written as a file (for schemes whose configuration takes a path).
    pub list_file: &'a Path,
    /// A directory the scheme may use for its parties' stores.
    pub dir: &'a Path,
    /// Configuration fields set for this run (`scanlab evaluate --param KEY=VALUE`), named as
    /// `scanlab serve --param` names them; only those in [`Scheme::sim_params`] (the
    /// evaluation refuses any other before it starts).
    pub params: &'a serde_json::Map<String, Value>,
    /// The run's seed: a scheme whose provider draws secrets that shape its matching (S7f's
    /// bucket projections) draws them from it, so that a run repeats. Never a deployment's.
    pub seed: u64,
}

/// A party of a deployment other than the provider (an enclave, a matching organisation),
/// with its own recorded view.
pub struct Party {
    /// Its role (`enclave`, `matcher 1`, ...).
    pub name: String,
    /// Its data directory: a store `scanlab view --data DIR` reads.
    pub data: PathBuf,
}

/// A secret key some party of a deployment holds: what its theft or compulsion opens is
/// measured from records, by trying it on every sealed field (see the evaluation's analyst).
pub struct Secret {
    /// Who holds it (`escrow authority`, `enclave`).
    pub holder: String,
    /// The HPKE key pair.
    pub key: Arc<KeyPair>,
    /// The HPKE `info` it is used with.
    pub info: Vec<u8>,
}

/// A complete in-process deployment of one scheme, for simulations.
pub struct Simulation {
    /// The provider half.
    pub provider: Arc<dyn ProviderScheme>,
    /// The other parties, each with its own view.
    pub parties: Vec<Party>,
    /// The secrets its parties hold.
    pub secrets: Vec<Secret>,
}

impl Simulation {
    /// A deployment with no party but the provider, and no secrets.
    pub fn provider_only(provider: Arc<dyn ProviderScheme>) -> Simulation {
        Simulation {
            provider,
            parties: Vec::new(),
            secrets: Vec::new(),
        }
    }
}

/// A detection scheme, as a plugin: a descriptor and the builders of its two halves.
pub trait Scheme: Send + Sync + 'static {
    /// Its id in `schemes.md` (`S0` …).
    fn code(&self) -> &'static str;
    /// Its name, as `scanlab serve --scheme` takes it.
    fn name(&self) -> &'static str;
    /// One sentence on what it does.
    fn summary(&self) -> &'static str;
    /// A paragraph for a reader who has not read `schemes.md` (`scanlab demo` shows it): what
    /// each party receives, and where the design comes from. The default is the summary.
    fn explanation(&self) -> &'static str {
        self.summary()
    }
    /// The provider half from its typed configuration, given as JSON whose fields are the
    /// `scanlab serve` flags of the same names (`{"list": "FILE", "radius": 31}`). A missing or
    /// unknown field is a [`SchemeError::Config`] naming the flag.
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError>;
    /// The client half for the parameters the provider announces at `GET /v1/scheme`.
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError>;
    /// The same, with its randomness drawn from `seed`, for simulations: a scheme whose
    /// client decisions are random (S7's synthetic vouchers) must give the same run for the
    /// same seed. The default is [`Scheme::client`].
    fn client_seeded(
        &self,
        params: &Value,
        _seed: u64,
    ) -> Result<Box<dyn ClientScheme>, SchemeError> {
        self.client(params)
    }
    /// A whole in-process deployment for simulations: the provider half, any other parties,
    /// and the secrets they hold.
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError>;
    /// The configuration fields [`Scheme::simulate`] honours in [`SimInputs::params`], so that
    /// an evaluation can sweep them (S7's threshold). The default is none.
    fn sim_params(&self) -> &'static [&'static str] {
        &[]
    }
}

/// An ordered set of schemes.
#[derive(Clone, Default)]
pub struct Registry {
    schemes: Vec<Arc<dyn Scheme>>,
}

/// Every scheme scanlab implements, in order: one line each.
pub fn registry() -> Registry {
    Registry::default()
        .with(Arc::new(crate::e2ee::E2ee))
        .with(Arc::new(crate::server_side::ServerSide))
        .with(Arc::new(crate::exceptional_access::ExceptionalAccess))
        .with(Arc::new(crate::device_hash::DeviceHash))
        .with(Arc::new(crate::partial_hash::PartialHash))
        .with(Arc::new(crate::enclave::EnclaveScheme))
        .with(Arc::new(crate::on_device::OnDevice {
            form: crate::on_device::Form::Plain,
        }))
        .with(Arc::new(crate::on_device::OnDevice {
            form: crate::on_device::Form::Filter,
        }))
        .with(Arc::new(crate::private_match::PrivateMatch { fuzzy: None }))
        .with(Arc::new(crate::private_match::PrivateMatch {
            fuzzy: Some(crate::private_match::Fuzzy::DEFAULT),
        }))
        .with(Arc::new(crate::third_party::ThirdParty))
        .with(Arc::new(crate::third_party_multi::ThirdPartyMulti))
        .with(Arc::new(crate::user_report::UserReport))
}

impl Registry {
    /// This registry with `s` added at the end.
    pub fn with(mut self, s: Arc<dyn Scheme>) -> Registry {
        self.schemes.retain(|x| x.name() != s.name());
        self.schemes.push(s);
        self
    }

    /// The schemes, in order.
    pub fn all(&self) -> &[Arc<dyn Scheme>] {
        &self.schemes
    }

    /// Their names.
    pub fn names(&self) -> Vec<&'static str> {
        self.schemes.iter().map(|s| s.name()).collect()
    }

    /// A scheme by name or id (`device-hash` or `S3`).
    pub fn get(&self, name: &str) -> Result<Arc<dyn Scheme>, SchemeError> {
        self.schemes
            .iter()
            .find(|s| s.name() == name || s.code().eq_ignore_ascii_case(name))
            .cloned()
            .ok_or_else(|| {
                SchemeError::Config(format!(
                    "unknown scheme {name:?}; known: {}",
                    self.names().join(", ")
                ))
            })
    }

    /// The client half for what a provider announces at `GET /v1/scheme` (`{name, params}`).
    pub fn client_half(&self, info: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        let name = info["name"].as_str().unwrap_or_default();
        self.get(name)?.client(&info["params"])
    }
}
