//! Clients that do not comply: every scheme that scans on the device trusts the device to run
//! its half. Here Alice runs a modified client and Bob an honest one, for every scheme, with
//! the same two modifications, made to the scheme's own client half from outside it (so they
//! apply to a scheme this code has never seen):
//!
//! - **skips the scan**: the half is never asked about an attachment and sends no scheme
//!   message (no scan request, no voucher, no hash); everything else it does (fields inside
//!   or beside the message, escrow capsules) goes on as usual;
//! - **scans a decoy**: the half is asked about a benign photo instead of the image actually
//!   attached, and reads the provider's replies about that photo: a hash of another image, a
//!   thumbnail of another image, another image sealed to the enclave, a voucher for another
//!   image;
//! - **scans noise**: the half is asked about seeded random noise (64×64 pixels, drawn from
//!   the attachment's own SHA-256, so the scan and its reply see the same noise) in place of
//!   the image: a random hash, a random thumbnail, random pixels sealed, a voucher for noise.
//!
//! Together these cover the modified clients the literature describes: skipping is also
//! withholding vouchers (S7 sends none), the decoy is the hash of a different image or a
//! different image sealed to the enclave, noise is a random hash.
//!
//! Alice sends every list image to Bob. Per scheme and client: how many reached review
//! (recall), how many Bob's honest half refused, and whether the provider could tell from its
//! own view, measured as the one thing it can see without opening anything: the number of
//! scheme requests it received per image, against an honest client's. A decoy scan sends the
//! same number, so a provider cannot see it that way; only a recipient that re-checks what was
//! scanned (S5) can.

use crate::EvalError;
use scanlab_hashlist::HashList;
use scanlab_messenger::RecordKind;
use scanlab_messenger::client::ClientError;
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Delivered, Outgoing, OutgoingMessage, ScanAction,
};
use scanlab_schemes::Scheme;
use serde_json::Value;
use std::sync::Arc;

/// How Alice's client departs from the scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The scheme's half, unchanged (the baseline).
    Honest,
    /// Never scans, sends no scheme message.
    SkipsScan,
    /// Scans a benign photo in place of each attachment.
    ScansDecoy,
    /// Scans seeded random noise in place of each attachment.
    ScansNoise,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Honest => "honest",
            Mode::SkipsScan => "skips the scan",
            Mode::ScansDecoy => "scans a decoy",
            Mode::ScansNoise => "scans noise",
        }
    }
}

/// A scheme's client half, modified from outside.
struct Modified {
    inner: Box<dyn ClientScheme>,
    mode: Mode,
    decoy: Arc<Vec<u8>>,
}

/// The attachment as the half is shown it: the decoy's bytes in place of the image's, or the
/// image itself.
fn shown<'a>(decoy: Option<&'a [u8]>, a: &Outgoing<'a>) -> Outgoing<'a> {
    Outgoing {
        bytes: decoy.unwrap_or(a.bytes),
        media: a.media,
        attachment: a.attachment,
    }
}

/// A 64×64 PNG of random pixels drawn from the attachment's SHA-256: the same attachment gives
/// the same noise, so the scan request and its reply agree.
fn noise(a: &Outgoing) -> Result<Vec<u8>, ClientError> {
    use rand::{RngCore, SeedableRng};
    let mut seed = [0u8; 32];
    for (i, b) in a.attachment.sha256.bytes().enumerate() {
        seed[i % 32] ^= b.wrapping_add(i as u8);
    }
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    let mut px = vec![0u8; 64 * 64 * 3];
    rng.fill_bytes(&mut px);
    let img = image::RgbImage::from_raw(64, 64, px)
        .ok_or_else(|| ClientError::Scheme("noise image".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| ClientError::Scheme(format!("noise image: {e}")))?;
    Ok(out.into_inner())
}

impl Modified {
    /// The bytes to show the half in place of the attachment's, if any.
    fn substitute(&self, a: &Outgoing) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(match self.mode {
            Mode::ScansDecoy => Some(self.decoy.to_vec()),
            Mode::ScansNoise => Some(noise(a)?),
            Mode::Honest | Mode::SkipsScan => None,
        })
    }
}

impl ClientScheme for Modified {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn on_attachment(&mut self, ctx: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        if self.mode == Mode::SkipsScan {
            return Ok(ScanAction::Nothing);
        }
        let sub = self.substitute(a)?;
        self.inner.on_attachment(ctx, &shown(sub.as_deref(), a))
    }
    fn on_scan_reply(
        &mut self,
        ctx: &ClientCtx,
        a: &Outgoing,
        reply: &Value,
    ) -> Result<Option<String>, ClientError> {
        let sub = self.substitute(a)?;
        self.inner
            .on_scan_reply(ctx, &shown(sub.as_deref(), a), reply)
    }
    fn inner_fields(&mut self, ctx: &ClientCtx, chat: &str) -> Result<Option<Value>, ClientError> {
        self.inner.inner_fields(ctx, chat)
    }
    fn aad(
        &mut self,
        ctx: &ClientCtx,
        chat: &str,
        plaintext: &[u8],
    ) -> Result<Option<Vec<u8>>, ClientError> {
        self.inner.aad(ctx, chat, plaintext)
    }
    fn message_fields(
        &mut self,
        ctx: &ClientCtx,
        m: &OutgoingMessage,
    ) -> Result<Option<Value>, ClientError> {
        self.inner.message_fields(ctx, m)
    }
    fn outbox(&mut self, ctx: &ClientCtx) -> Result<Vec<Value>, ClientError> {
        match self.mode {
            Mode::SkipsScan => Ok(Vec::new()),
            _ => self.inner.outbox(ctx),
        }
    }
    fn on_receive(&mut self, ctx: &ClientCtx, m: &Delivered) -> Result<(), ClientError> {
        self.inner.on_receive(ctx, m)
    }
    fn report(
        &mut self,
        ctx: &ClientCtx,
        m: &Delivered,
        reason: &str,
    ) -> Result<Value, ClientError> {
        self.inner.report(ctx, m, reason)
    }
}

/// One scheme against one kind of client.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct NoncompliantRow {
    /// The scheme's code.
    pub scheme: String,
    /// The client: `honest`, `skips the scan`, `scans a decoy` or `scans noise`.
    pub client: String,
    /// List images Alice sent (a send the scheme refused counts as not sent).
    pub sent: usize,
    /// Of those, distinct images that reached the provider's review queue.
    pub reached_review: usize,
    /// Messages Bob's honest client refused.
    pub refused_by_recipient: usize,
    /// Scheme requests the provider received per image (`/v1/scan`, `/v1/scheme/...`).
    pub scheme_requests_per_image: f64,
    /// Whether that differs from the honest client's: what the provider can see.
    pub visible_to_provider: bool,
}

/// Every scheme against every kind of client.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Noncompliant {
    /// One row per scheme and client.
    pub rows: Vec<NoncompliantRow>,
    /// What these rows cannot show.
    pub limits: String,
}

fn one(
    scheme: &dyn Scheme,
    list: &HashList,
    images: &[Vec<u8>],
    decoy: &Arc<Vec<u8>>,
    mode: Mode,
) -> Result<(NoncompliantRow, usize), EvalError> {
    let d = crate::attacks::deploy(scheme, list)?;
    let mut clients =
        crate::attacks::users(scheme, &d, &[("alice", 1), ("bob", 1)], |who, half| {
            if who == "alice" {
                Box::new(Modified {
                    inner: half,
                    mode,
                    decoy: decoy.clone(),
                })
            } else {
                half
            }
        })?;
    let (provider, _dir) = (d.provider, d.dir);
    let [alice, bob] = &mut clients[..] else {
        return Err(EvalError::Io("two clients".into()));
    };
    alice.create_chat("pair", &["bob"])?;
    bob.recv()?;
    let mut sent = 0;
    for img in images {
        if alice.send("pair", None, Some(img)).is_ok() {
            sent += 1;
        }
    }
    let refused = bob.recv()?.iter().filter(|m| m.is_err()).count();
    let reached = provider
        .reviews()?
        .iter()
        .map(|r| r.blob.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let requests = provider
        .view()?
        .iter()
        .filter(|r| {
            r.kind == RecordKind::Received
                && (r.endpoint == "POST /v1/scan" || r.endpoint.starts_with("POST /v1/scheme"))
        })
        .count();
    Ok((
        NoncompliantRow {
            scheme: scheme.code().into(),
            client: mode.label().into(),
            sent,
            reached_review: reached,
            refused_by_recipient: refused,
            scheme_requests_per_image: requests as f64 / images.len().max(1) as f64,
            visible_to_provider: false,
        },
        requests,
    ))
}

/// Runs every scheme in `schemes` with `list` deployed, Alice sending `images` (list images)
/// with each kind of client, and `decoy` (a benign photo) as the decoy.
pub fn run(
    schemes: &[Arc<dyn Scheme>],
    list: &HashList,
    images: &[Vec<u8>],
    decoy: &[u8],
) -> Result<Noncompliant, EvalError> {
    let decoy = Arc::new(decoy.to_vec());
    let mut rows = Vec::new();
    for scheme in schemes {
        let (honest, base) = one(&**scheme, list, images, &decoy, Mode::Honest)?;
        rows.push(honest);
        for mode in [Mode::SkipsScan, Mode::ScansDecoy, Mode::ScansNoise] {
            let (mut row, requests) = one(&**scheme, list, images, &decoy, mode)?;
            row.visible_to_provider = requests != base;
            rows.push(row);
        }
    }
    Ok(Noncompliant {
        rows,
        limits: format!(
            "{} list images per run, as sent (no edits). \"Visible\" compares only the count of scheme requests with an honest client's: a provider that requires a request per attachment refuses a skipping client outright, which none of these deployments does, and a decoy or noise is invisible that way. A scheme that the recipient re-checks (S5) refuses decoys and noise at the recipient; sender and recipient both modified, or the image sent as a file or inside an archive (packaging, not measured here), escape every check.",
            images.len()
        ),
    })
}
