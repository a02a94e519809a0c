//! S1 `server-side`: the pre-E2EE baseline, as PhotoDNA and PDQ run on servers today.
//!
//! - **Client half:** gives the provider each attachment's key (blob id, AES-256-GCM key,
//!   nonce, digest). The message itself stays MLS-encrypted, but the attachment no longer is.
//! - **Provider half:** fetches the blob, decrypts it, hashes it (PDQ) and matches it against
//!   the list. It now holds every image in plaintext.
//! - **On a match:** the provider puts the image in its own review queue (submitter
//!   `provider`); the client is not told.

use crate::device_hash::parse;
use crate::fingerprint::{Fingerprint, fingerprint};
use crate::{MatchInfo, Matcher, Scheme, SchemeError, SimInputs, Simulation};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::{AttachmentRef, Media, open_attachment};
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// S1's descriptor.
pub struct ServerSide;

/// S1's configuration: the list and the radius, as S3's.
pub type Config = crate::device_hash::Config;

/// What the client sends for each attachment: its key.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScanRequest {
    /// The blob id.
    pub blob: String,
    /// The attachment reference, key included.
    pub attachment: AttachmentRef,
}

impl Scheme for ServerSide {
    fn code(&self) -> &'static str {
        "S1"
    }
    fn name(&self) -> &'static str {
        "server-side"
    }
    fn summary(&self) -> &'static str {
        "the device gives the provider each attachment's key; the provider decrypts, hashes and matches every image"
    }
    fn explanation(&self) -> &'static str {
        "Scanning as unencrypted services do it (PhotoDNA on uploads), rebuilt on top of end-to-end encryption: the sender's device hands the provider each attachment's key, and the provider decrypts, hashes and matches every image. The encryption becomes a formality: the provider holds every photo in the clear, listed or not."
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

/// S1's client half.
pub struct Client;

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "server-side"
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        Ok(ScanAction::Request(json!(ScanRequest {
            blob: a.attachment.blob.clone(),
            attachment: a.attachment.clone(),
        })))
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

    fn scan_inner(&self, ctx: &ScanCtx, r: ScanRequest) -> Result<ScanOutcome, SchemeError> {
        if r.attachment.blob != r.blob {
            return Err(SchemeError::Malformed(
                "attachment is for another blob".into(),
            ));
        }
        // The blob is bound (in its associated data) to the sender named here; the sender must
        // be the caller, or one account could have another's attachment scanned as its own.
        if r.attachment.sender != ctx.who() {
            return Err(SchemeError::Malformed(format!(
                "attachment is bound to sender {:?}, not the caller",
                r.attachment.sender
            )));
        }
        let blob = ctx
            .blob(&r.blob)?
            .ok_or_else(|| SchemeError::Malformed(format!("no blob {}", r.blob)))?;
        let image = open_attachment(&blob, &r.attachment)
            .map_err(|e| SchemeError::Malformed(format!("cannot decrypt the attachment: {e}")))?;
        let mut derived = json!({
            "blob": r.blob,
            "plaintext_sha256": hex::encode(Sha256::digest(&image)),
            "plaintext_len": image.len(),
        });
        let reason = match r.attachment.media {
            Media::Video => {
                // The provider has the whole video: it hashes every frame itself.
                let video = crate::fingerprint::scan_video(&image)?;
                let per: Vec<Option<MatchInfo>> = video
                    .counted()
                    .map(|f| self.matcher.check(&f.hash.hash))
                    .collect();
                derived["frames"] = json!(video.frames.iter().map(|f| &f.hash).collect::<Vec<_>>());
                derived["matches"] = json!(per);
                crate::video_verdict(
                    &per.iter()
                        .map(|m| m.as_ref().map(MatchInfo::reason))
                        .collect::<Vec<_>>(),
                )
            }
            media => {
                let Fingerprint::Image { hash, quality } = fingerprint(media, &image)? else {
                    return Err(SchemeError::Media(media));
                };
                let m = self.matcher.check(&hash);
                derived["hash"] = json!(hash.to_string());
                derived["quality"] = json!(quality);
                derived["match"] = json!(m);
                m.map(|m| m.reason())
            }
        };
        if let Some(reason) = &reason {
            ctx.submit_review("provider", &r.blob, reason, image)?;
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
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        Ok(self.scan_inner(ctx, parse(request)?)?)
    }
}
