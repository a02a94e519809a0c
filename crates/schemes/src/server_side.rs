//! S1 `server-side`: the pre-E2EE baseline, as PhotoDNA and PDQ run on servers today.
//!
//! - **Client half:** gives the provider each attachment's key (blob id, AES-256-GCM key,
//!   nonce, digest). The message itself stays MLS-encrypted, but the attachment no longer is.
//! - **Provider half:** fetches the blob, decrypts it, hashes it (PDQ) and matches it against
//!   the list. It now holds every image in plaintext.
//! - **On a match:** the provider puts the image in its own review queue (submitter
//!   `provider`); the client is not told.

use crate::{Matcher, SchemeError, field};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::{AttachmentRef, open_attachment};
use scanlab_messenger::provider::ApiError;
use scanlab_messenger::scan::{ClientScheme, ProviderScheme, ScanCtx, ScanOutcome};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// S1's client half.
pub struct Client;

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "server-side"
    }
    fn scan_request(
        &mut self,
        _image: &[u8],
        attachment: &AttachmentRef,
    ) -> Result<Option<Value>, ClientError> {
        Ok(Some(
            json!({ "blob": attachment.blob, "attachment": attachment }),
        ))
    }
}

/// S1's provider half.
pub struct Provider {
    matcher: Matcher,
}

impl Provider {
    /// Matches against `matcher`'s list.
    pub fn new(matcher: Matcher) -> Provider {
        Provider { matcher }
    }

    fn scan_inner(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, SchemeError> {
        let blob_id = field(request, "blob")?;
        let r: AttachmentRef = serde_json::from_value(request["attachment"].clone())
            .map_err(|e| SchemeError::Malformed(format!("attachment: {e}")))?;
        if r.blob != blob_id {
            return Err(SchemeError::Malformed(
                "attachment is for another blob".into(),
            ));
        }
        let blob = ctx
            .blob(blob_id)?
            .ok_or_else(|| SchemeError::Malformed(format!("no blob {blob_id}")))?;
        let image = open_attachment(&blob, &r)
            .map_err(|e| SchemeError::Malformed(format!("cannot decrypt the attachment: {e}")))?;
        let pdq = crate::pdq_of(&image)?;
        let m = self.matcher.check(&pdq.hash);
        let derived = json!({
            "blob": blob_id,
            "plaintext_sha256": hex::encode(Sha256::digest(&image)),
            "plaintext_len": image.len(),
            "hash": pdq.hash.to_string(),
            "quality": pdq.quality,
            "match": m,
        });
        if let Some(m) = &m {
            ctx.submit_review("provider", blob_id, &m.reason(), image)?;
        }
        Ok(ScanOutcome {
            reply: json!({ "disclose": false }),
            derived: Some(derived),
        })
    }
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "server-side"
    }
    fn public_params(&self) -> Value {
        json!({ "radius": self.matcher.radius() })
    }
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ApiError> {
        Ok(self.scan_inner(ctx, request)?)
    }
}
