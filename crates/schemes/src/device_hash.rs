//! S3 `device-hash`: the Commission paper's shortlisted "on-device full hashing with matching
//! at server".
//!
//! - **Client half:** computes the PDQ hash of every image and sends it beside the ciphertext.
//! - **Provider half:** matches the hash against the list (radius 31 by default). It receives
//!   exactly one 256-bit hash per image, listed or not, and keeps it.
//! - **On a match:** the provider tells the client to disclose, and the client uploads the full
//!   plaintext image to the provider's review queue.

use crate::fingerprint::{Fingerprint, fingerprint};
use crate::{Matcher, Scheme, SchemeError, SimInputs, Simulation};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use scanlab_pdq::Hash256;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// S3's descriptor.
pub struct DeviceHash;

/// S3's configuration: the list and the radius.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The hash list file.
    pub list: PathBuf,
    /// Match radius in bits.
    #[serde(default = "crate::matcher::default_radius")]
    pub radius: u32,
}

impl Config {
    /// The matcher this configuration describes (reads the list file).
    pub fn matcher(&self) -> Result<Matcher, SchemeError> {
        Matcher::new(crate::read_list(&self.list)?, self.radius)
    }
}

/// What the client sends for each image: `POST /v1/scan`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScanRequest {
    /// The encrypted attachment's blob id.
    pub blob: String,
    /// Its PDQ hash.
    pub hash: Hash256,
}

/// The provider's answer (shared with S4): whether it matched, and whether to disclose.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatchReply {
    /// Matched the list.
    #[serde(rename = "match")]
    pub matched: bool,
    /// The client should upload the plaintext for review.
    pub disclose: bool,
    /// Why (the list entry and distance), on a match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl MatchReply {
    /// The reply for a match result.
    pub fn of(m: &Option<crate::MatchInfo>) -> MatchReply {
        MatchReply {
            matched: m.is_some(),
            disclose: m.is_some(),
            reason: m.as_ref().map(|m| m.reason()),
        }
    }
}

/// The client half's reading of a [`MatchReply`]: disclose when told, with the reason.
pub(crate) fn follow_reply(reply: &Value) -> Result<Option<String>, ClientError> {
    let r: MatchReply = serde_json::from_value(reply.clone())
        .map_err(|e| ClientError::Scheme(format!("malformed scan reply: {e}")))?;
    Ok(r.disclose
        .then(|| r.reason.unwrap_or_else(|| "match".into())))
}

impl Scheme for DeviceHash {
    fn code(&self) -> &'static str {
        "S3"
    }
    fn name(&self) -> &'static str {
        "device-hash"
    }
    fn summary(&self) -> &'static str {
        "the device sends each image's PDQ hash; the provider matches it and asks for the image on a match"
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        Ok(Arc::new(Provider::new(c.matcher()?)))
    }
    fn client(&self, _params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let m = Matcher::new(inputs.list.clone(), crate::DEFAULT_RADIUS)?;
        Ok(Simulation::provider_only(Arc::new(Provider::new(m))))
    }
}

/// S3's client half.
#[derive(Default)]
pub struct Client;

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "device-hash"
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        let hash = match fingerprint(a.media, a.bytes)? {
            Fingerprint::Image { hash, .. } => hash,
            Fingerprint::Video { .. } => return Err(SchemeError::Media(a.media).into()),
        };
        let req = ScanRequest {
            blob: a.attachment.blob.clone(),
            hash,
        };
        Ok(ScanAction::Request(json!(req)))
    }
    fn on_scan_reply(
        &mut self,
        _: &ClientCtx,
        _: &Outgoing,
        reply: &Value,
    ) -> Result<Option<String>, ClientError> {
        follow_reply(reply)
    }
}

/// S3's provider half.
pub struct Provider {
    matcher: Matcher,
}

impl Provider {
    /// Matches against `matcher`'s list.
    pub fn new(matcher: Matcher) -> Provider {
        Provider { matcher }
    }
}

/// Parses a typed request body, or says what is wrong with it.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, ScanError> {
    serde_json::from_value(v.clone()).map_err(|e| ScanError::Malformed(e.to_string()))
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "device-hash"
    }
    fn public_params(&self) -> Value {
        json!({ "radius": self.matcher.radius() })
    }
    fn scan(&self, _ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        let r: ScanRequest = parse(request)?;
        let m = self.matcher.check(&r.hash);
        Ok(ScanOutcome {
            reply: json!(MatchReply::of(&m)),
            derived: Some(json!({ "blob": r.blob, "hash": r.hash.to_string(), "match": m })),
        })
    }
}
