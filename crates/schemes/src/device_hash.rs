//! S3 `device-hash`: the Commission paper's shortlisted "on-device full hashing with matching
//! at server".
//!
//! - **Client half:** computes the PDQ hash of every image and sends it beside the ciphertext.
//! - **Provider half:** matches the hash against the list (radius 31 by default). It receives
//!   exactly one 256-bit hash per image, listed or not, and keeps it.
//! - **On a match:** the provider tells the client to disclose, and the client uploads the full
//!   plaintext image to the provider's review queue.

use crate::{Matcher, SchemeError, disclose_reply, field};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::AttachmentRef;
use scanlab_messenger::provider::ApiError;
use scanlab_messenger::scan::{ClientScheme, ProviderScheme, ScanCtx, ScanOutcome};
use scanlab_pdq::Hash256;
use serde_json::{Value, json};

/// S3's client half.
#[derive(Default)]
pub struct Client;

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "device-hash"
    }
    fn scan_request(
        &mut self,
        image: &[u8],
        attachment: &AttachmentRef,
    ) -> Result<Option<Value>, ClientError> {
        let pdq = crate::pdq_of(image)?;
        Ok(Some(
            json!({ "blob": attachment.blob, "hash": pdq.hash.to_string() }),
        ))
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

/// Parses the 64-hex-digit hash of a scan request.
pub(crate) fn parse_hash(request: &Value) -> Result<Hash256, SchemeError> {
    field(request, "hash")?
        .parse()
        .map_err(|e| SchemeError::Malformed(format!("hash: {e}")))
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "device-hash"
    }
    fn public_params(&self) -> Value {
        json!({ "radius": self.matcher.radius() })
    }
    fn scan(&self, _ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ApiError> {
        let hash = parse_hash(request)?;
        let m = self.matcher.check(&hash);
        Ok(ScanOutcome {
            reply: disclose_reply(&m),
            derived: Some(json!({ "blob": request["blob"], "hash": hash.to_string(), "match": m })),
        })
    }
}
