//! S9 `user-report`: no scanning. Recipients may report a message, and message franking lets
//! the provider verify that the reported message is what its sender sent (Facebook 2016;
//! Grubbs, Lu and Ristenpart, CRYPTO 2017, ia.cr/2017/664), following the franking of the IETF
//! MIMI protocol draft (`draft-ietf-mimi-protocol`, "Message Franking") on MLS.
//!
//! # Construction
//! Built from HMAC-SHA256 (`hmac`, `sha2`), HKDF-SHA256 (`hkdf`) and Ed25519
//! (`ed25519-dalek`); `lp(x)` is `x` prefixed with its length as a big-endian `u32`.
//!
//! 1. **Sender**, per application message: a fresh 32-byte salt `s` goes *inside* the
//!    plaintext (`scheme.frank.salt`), which the recipients alone decrypt. Over the final
//!    plaintext `P` (salt included) it computes the franking tag
//!    `tag = HMAC-SHA256(s, "scanlab-franking-tag-v1" ‖ lp(chat) ‖ lp(sender) ‖ P)`
//!    and carries `"SLF1" ‖ tag` as the MLS message's authenticated data (RFC 9420 §6.3.1,
//!    openmls `set_aad`): in the clear for the provider, and covered by the sender's MLS
//!    signature and AEAD, so recipients know the sender meant this tag for this content.
//!    `P` holds the attachment's reference, with its key and the SHA-256 of its plaintext:
//!    the tag commits to both, and the blob's own key commitment (`scanlab_messenger::mls`)
//!    means one key, hence one plaintext, opens it. An invisible salamander (one ciphertext,
//!    two plaintexts under two keys) cannot be reported as the other file.
//! 2. **Provider** (the MIMI hub), on accepting the message at time `at` (ms) from the
//!    authenticated account `sender` in chat `group`: it refuses an application message with
//!    no tag, and stamps it with
//!    `frank = HMAC-SHA256(K_hub, "scanlab-franking-server-v1" ‖ tag ‖ lp(sender) ‖ lp(group) ‖ at)`
//!    and `sig = Ed25519(K_sig, "scanlab-franking-integrity-v1" ‖ tag ‖ frank ‖ lp(sender) ‖
//!    lp(group) ‖ at)`. The stamp `{at, frank, sig}` is delivered with the message
//!    ([`scanlab_messenger::scan::ProviderScheme::stamp`]). `K_hub` and `K_sig` are derived
//!    with HKDF from one 32-byte secret; the public key of `K_sig` is announced, and pinned by
//!    clients.
//! 3. **Recipient**: recomputes the tag from the plaintext and its salt and refuses the message
//!    if it differs from the authenticated data (a sender who franks one thing and sends
//!    another), and checks the stamp's signature for this sender, chat and tag.
//! 4. **Report**: the recipient reveals `P` (which holds its own opening, the salt), sender,
//!    chat and stamp. The provider recomputes `tag` from `P`, then `frank`, and compares (in
//!    constant time): a forged report, an altered message, another sender or chat, or a
//!    message never sent, fails. If `P` names an attachment, the provider opens the blob it
//!    holds with the revealed key, checks the plaintext's digest, and queues the image for
//!    review. It learns the reported message and nothing else: unreported messages give it
//!    the 36-byte tag only, which hides `P` as long as the salt stays secret (HMAC as a PRF).
//!
//! # What franking does not ensure
//! From the MIMI draft and its Tamarin model (`felixlinker/mimi-franking-tamarin`):
//! - correctness holds only if some honest client processed the message. The hub does not
//!   check tags against content (it cannot), so a sender can frank `m2` while sending `m1`;
//!   honest recipients refuse `m1` here, but a recipient colluding with the sender can report
//!   `m2`, which nobody else received;
//! - the report proves what was sent, not who wrote it first, nor that it is abusive: a
//!   forwarded message is franked by its forwarder;
//! - reporting is voluntary: recall is the recipients' reporting rate, and two users who
//!   agree to exchange listed images never report each other;
//! - a compromised provider (or a leaked `K_hub`) can mint stamps for any tag, and the
//!   provider knows who talks to whom and when, as in S0;
//! - the signature makes a stamp verifiable by third parties: a report is transferable
//!   evidence against its sender, which deniable messaging otherwise avoids (asymmetric
//!   franking, Tyagi et al., CRYPTO 2019, addresses this; not built here).

use crate::{Scheme, SchemeError, SimInputs, Simulation};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use rand::{RngCore, SeedableRng};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::{AttachmentRef, open_attachment};
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Delivered, Envelope, IncomingMessage, ProviderScheme, ScanCtx,
    ScanError, ScanOutcome,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// The authenticated data's prefix: scanlab franking, version 1.
pub const AAD_PREFIX: &[u8; 4] = b"SLF1";
const TAG_CONTEXT: &[u8] = b"scanlab-franking-tag-v1";
const SERVER_CONTEXT: &[u8] = b"scanlab-franking-server-v1";
const SIG_CONTEXT: &[u8] = b"scanlab-franking-integrity-v1";
const KDF_SALT: &[u8] = b"scanlab-franking-keys-v1";

/// Why a franked message or a report did not verify. Each case is what a reviewer would ask
/// for by name: the tests match on them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrankError {
    /// The message carries no franking tag in its authenticated data.
    #[error(
        "the message carries no franking tag (its authenticated data is not SLF1 and 32 bytes)"
    )]
    NoTag,
    /// The plaintext holds no franking salt (`scheme.frank.salt`, 32 bytes hex).
    #[error("the plaintext holds no franking salt")]
    NoSalt,
    /// The tag does not commit to this content: the sender franked something else.
    #[error("the franking tag does not match the message's content")]
    TagMismatch,
    /// The provider's stamp is missing or malformed.
    #[error("the message has no valid provider stamp: {0}")]
    NoStamp(String),
    /// The stamp's signature does not verify for this sender, chat and tag.
    #[error("the provider's stamp does not verify for this sender, chat and tag")]
    BadStamp,
    /// The report does not verify: forged, altered, attributed to another sender or chat, or
    /// of a message this provider never relayed.
    #[error("the report does not verify: not a message this provider relayed from {0:?}")]
    Unverified(String),
    /// The reported attachment does not open to its committed plaintext.
    #[error("the reported attachment does not open to what the message committed to: {0}")]
    Attachment(String),
    /// The report is malformed.
    #[error("malformed report: {0}")]
    Malformed(String),
}

impl From<FrankError> for ClientError {
    fn from(e: FrankError) -> ClientError {
        ClientError::Scheme(format!("franking: {e}"))
    }
}

impl From<FrankError> for ScanError {
    fn from(e: FrankError) -> ScanError {
        match e {
            FrankError::Malformed(_) | FrankError::NoTag | FrankError::NoSalt => {
                ScanError::Malformed(e.to_string())
            }
            _ => ScanError::Refused(e.to_string()),
        }
    }
}

fn lp(out: &mut Vec<u8>, x: &[u8]) {
    out.extend_from_slice(&(x.len() as u32).to_be_bytes());
    out.extend_from_slice(x);
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The franking tag of plaintext `p` sent by `sender` to `chat` under salt `salt`.
pub fn tag(salt: &[u8; 32], chat: &str, sender: &str, p: &[u8]) -> [u8; 32] {
    let mut head = TAG_CONTEXT.to_vec();
    lp(&mut head, chat.as_bytes());
    lp(&mut head, sender.as_bytes());
    hmac(salt, &[&head, p])
}

/// The salt a plaintext carries (`scheme.frank.salt`).
pub fn salt_of(p: &[u8]) -> Result<[u8; 32], FrankError> {
    let v: Value = serde_json::from_slice(p).map_err(|_| FrankError::NoSalt)?;
    v["scheme"]["frank"]["salt"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or(FrankError::NoSalt)
}

/// The tag in an MLS authenticated data, if it is one.
pub fn tag_of(aad: &[u8]) -> Result<[u8; 32], FrankError> {
    match aad.strip_prefix(AAD_PREFIX.as_slice()) {
        Some(t) => t.try_into().map_err(|_| FrankError::NoTag),
        None => Err(FrankError::NoTag),
    }
}

fn bound(tag: &[u8; 32], sender: &str, group: &str, at: u64) -> Vec<u8> {
    let mut b = tag.to_vec();
    lp(&mut b, sender.as_bytes());
    lp(&mut b, group.as_bytes());
    b.extend_from_slice(&at.to_be_bytes());
    b
}

/// The provider's stamp on one message, delivered with it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// When the provider accepted it (ms since the epoch).
    pub at: u64,
    /// `HMAC(K_hub, …)`: what the provider checks a report against.
    #[serde(with = "hex::serde")]
    pub frank: [u8; 32],
    /// The provider's Ed25519 signature: what recipients and third parties check.
    #[serde(with = "hex::serde")]
    pub sig: [u8; 64],
}

fn signed(tag: &[u8; 32], s: &Stamp, sender: &str, group: &str) -> Vec<u8> {
    let mut m = SIG_CONTEXT.to_vec();
    m.extend_from_slice(tag);
    m.extend_from_slice(&s.frank);
    m.extend_from_slice(&bound(tag, sender, group, s.at)[32..]);
    m
}

/// Checks a stamp's signature under the provider's announced franking key.
pub fn verify_stamp(
    key: &VerifyingKey,
    tag: &[u8; 32],
    stamp: &Stamp,
    sender: &str,
    group: &str,
) -> Result<(), FrankError> {
    key.verify_strict(
        &signed(tag, stamp, sender, group),
        &Signature::from_bytes(&stamp.sig),
    )
    .map_err(|_| FrankError::BadStamp)
}

/// The provider's franking keys, derived from one secret.
pub struct Keys {
    hub: Zeroizing<[u8; 32]>,
    sig: SigningKey,
}

impl Keys {
    /// Derives `K_hub` and `K_sig` from `secret` (HKDF-SHA256).
    pub fn derive(secret: &[u8; 32]) -> Keys {
        let h = hkdf::Hkdf::<Sha256>::new(Some(KDF_SALT), secret);
        let mut hub = Zeroizing::new([0u8; 32]);
        let mut sig = Zeroizing::new([0u8; 32]);
        h.expand(b"hub mac", hub.as_mut()).expect("32 bytes");
        h.expand(b"integrity signature", sig.as_mut())
            .expect("32 bytes");
        Keys {
            hub,
            sig: SigningKey::from_bytes(&sig),
        }
    }

    /// The public key recipients check stamps under.
    pub fn public(&self) -> VerifyingKey {
        self.sig.verifying_key()
    }

    /// `frank` for `tag` from `sender` in `group` at `at`: the HMAC alone (what the
    /// benchmark times apart from the signature).
    pub fn frank(&self, tag: &[u8; 32], sender: &str, group: &str, at: u64) -> [u8; 32] {
        hmac(
            self.hub.as_ref(),
            &[SERVER_CONTEXT, &bound(tag, sender, group, at)],
        )
    }

    /// The whole stamp: the HMAC and the signature.
    pub fn stamp(&self, tag: &[u8; 32], sender: &str, group: &str, at: u64) -> Stamp {
        let mut s = Stamp {
            at,
            frank: self.frank(tag, sender, group, at),
            sig: [0; 64],
        };
        s.sig = self.sig.sign(&signed(tag, &s, sender, group)).to_bytes();
        s
    }
}

/// A report: `POST /v1/report`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The chat it was sent in.
    pub group: String,
    /// Its sender, as the recipient's MLS credential says.
    pub sender: String,
    /// The whole plaintext, base64 (it holds the salt: the opening).
    pub content: String,
    /// The provider's stamp, as delivered.
    pub stamp: Stamp,
    /// Why the recipient reports it.
    pub reason: String,
}

/// What a verified report established.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// The plaintext.
    pub content: Vec<u8>,
    /// The attachment it names, opened and checked, with its reference.
    pub attachment: Option<(AttachmentRef, Vec<u8>)>,
}

/// The provider's check of a report, given the blob store: the stamp's HMAC over the tag
/// recomputed from the revealed content, then the attachment against its committed digest.
pub fn verify_report(
    keys: &Keys,
    r: &Report,
    blob: impl FnOnce(&str) -> Result<Option<Vec<u8>>, ScanError>,
) -> Result<Verified, ScanError> {
    let content = B64
        .decode(&r.content)
        .map_err(|e| FrankError::Malformed(format!("content: {e}")))?;
    let salt = salt_of(&content)?;
    let t = tag(&salt, &r.group, &r.sender, &content);
    let expect = keys.frank(&t, &r.sender, &r.group, r.stamp.at);
    if !bool::from(expect.ct_eq(&r.stamp.frank)) {
        return Err(FrankError::Unverified(r.sender.clone()).into());
    }
    let v: Value = serde_json::from_slice(&content)
        .map_err(|e| FrankError::Malformed(format!("content: {e}")))?;
    let attachment = match v.get("attachment").filter(|a| !a.is_null()) {
        None => None,
        Some(a) => {
            let a: AttachmentRef = serde_json::from_value(a.clone())
                .map_err(|e| FrankError::Attachment(e.to_string()))?;
            if a.sender != r.sender || a.chat != r.group {
                return Err(FrankError::Attachment(
                    "the reference is bound to another sender or chat".into(),
                )
                .into());
            }
            let b = blob(&a.blob)?.ok_or_else(|| {
                FrankError::Attachment(format!("blob {} is no longer held", a.blob))
            })?;
            // Checks the key commitment, the padding and the plaintext's digest.
            let image =
                open_attachment(&b, &a).map_err(|e| FrankError::Attachment(e.to_string()))?;
            Some((a, image))
        }
    };
    Ok(Verified {
        content,
        attachment,
    })
}

/// S9's descriptor.
pub struct UserReport;

/// S9's configuration: where the provider keeps its franking secret.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The 32-byte franking secret, hex (created at random if absent; a fresh one per run if
    /// not given).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl Scheme for UserReport {
    fn code(&self) -> &'static str {
        "S9"
    }
    fn name(&self) -> &'static str {
        "user-report"
    }
    fn summary(&self) -> &'static str {
        "no scanning: each message is franked, and a recipient may report it, which the provider verifies"
    }
    fn explanation(&self) -> &'static str {
        "No scanning at all: each message carries a franking commitment (message franking, as Facebook Messenger deploys it), and a recipient who reports a message reveals it with an opening the provider verifies. Only what a participant chooses to report reaches the provider; nothing is matched automatically."
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        let secret = crate::secret_or_fresh(c.key.as_deref())?;
        Ok(Arc::new(Provider {
            keys: Keys::derive(&secret),
        }))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Client::new(params, crate::client_seed(None)).map(|c| Box::new(c) as _)
    }
    fn client_seeded(
        &self,
        params: &Value,
        seed: u64,
    ) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Client::new(params, crate::client_seed(Some(seed))).map(|c| Box::new(c) as _)
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand_chacha::ChaCha20Rng::seed_from_u64(inputs.seed ^ 0x6672_616e_6b21)
            .fill_bytes(secret.as_mut());
        Ok(Simulation::provider_only(Arc::new(Provider {
            keys: Keys::derive(&secret),
        })))
    }
}

/// S9's client half: franks what it sends, checks what it receives, reports on request.
pub struct Client {
    key: VerifyingKey,
    rng: rand_chacha::ChaCha20Rng,
}

impl Client {
    /// The client half for announced `params` (`franking_key`, hex), pinned with them.
    pub fn new(params: &Value, seed: [u8; 32]) -> Result<Client, SchemeError> {
        let key = params["franking_key"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| {
                SchemeError::Config(
                    "user-report: the announcement has no franking_key (32 bytes, hex)".into(),
                )
            })?;
        Ok(Client {
            key,
            rng: rand_chacha::ChaCha20Rng::from_seed(seed),
        })
    }

    /// Checks a delivered message: its tag commits to its content, and the provider's stamp
    /// verifies for its sender, chat and tag.
    pub fn check(&self, m: &Delivered) -> Result<Stamp, FrankError> {
        let t = tag_of(&m.aad)?;
        let salt = salt_of(&m.plaintext)?;
        if !bool::from(tag(&salt, &m.chat, &m.from, &m.plaintext).ct_eq(&t)) {
            return Err(FrankError::TagMismatch);
        }
        let stamp: Stamp = m
            .fields
            .as_ref()
            .and_then(|f| f.get("stamp"))
            .ok_or_else(|| FrankError::NoStamp("none delivered".into()))
            .and_then(|s| {
                serde_json::from_value(s.clone()).map_err(|e| FrankError::NoStamp(e.to_string()))
            })?;
        verify_stamp(&self.key, &t, &stamp, &m.from, &m.chat)?;
        Ok(stamp)
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "user-report"
    }
    fn inner_fields(&mut self, _: &ClientCtx, _: &str) -> Result<Option<Value>, ClientError> {
        let mut salt = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(salt.as_mut());
        Ok(Some(json!({ "frank": { "salt": hex::encode(*salt) } })))
    }
    fn aad(
        &mut self,
        ctx: &ClientCtx,
        chat: &str,
        plaintext: &[u8],
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let salt = Zeroizing::new(salt_of(plaintext)?);
        let mut aad = AAD_PREFIX.to_vec();
        aad.extend_from_slice(&tag(&salt, chat, ctx.account(), plaintext));
        Ok(Some(aad))
    }
    fn on_receive(&mut self, _: &ClientCtx, m: &Delivered) -> Result<(), ClientError> {
        self.check(m).map(|_| ()).map_err(Into::into)
    }
    fn report(&mut self, _: &ClientCtx, m: &Delivered, reason: &str) -> Result<Value, ClientError> {
        let stamp = self.check(m)?;
        Ok(json!(Report {
            group: m.chat.clone(),
            sender: m.from.clone(),
            content: B64.encode(&m.plaintext),
            stamp,
            reason: reason.into(),
        }))
    }
}

/// S9's provider half: stamps every application message, verifies reports.
pub struct Provider {
    keys: Keys,
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "user-report"
    }
    fn public_params(&self) -> Value {
        json!({ "franking_key": hex::encode(self.keys.public().as_bytes()) })
    }
    fn stamp(
        &self,
        ctx: &ScanCtx,
        m: &IncomingMessage,
        accepted_ms: u64,
    ) -> Result<Option<Value>, ScanError> {
        if m.kind != Envelope::Application {
            return Ok(None);
        }
        let t = tag_of(m.aad)?;
        Ok(Some(json!(self.keys.stamp(
            &t,
            ctx.who(),
            m.group,
            accepted_ms
        ))))
    }
    fn on_report(&self, ctx: &ScanCtx, body: &Value) -> Result<ScanOutcome, ScanError> {
        let r: Report = serde_json::from_value(body.clone())
            .map_err(|e| ScanError::from(FrankError::Malformed(e.to_string())))?;
        let v = verify_report(&self.keys, &r, |id| Ok(ctx.blob(id)?))?;
        let review = match &v.attachment {
            Some((a, image)) => {
                Some(ctx.submit_review("report", &a.blob, &r.reason, image.clone())?)
            }
            None => None,
        };
        Ok(ScanOutcome {
            reply: json!({ "verified": true, "sender": r.sender, "group": r.group, "at": r.stamp.at, "review": review }),
            derived: Some(json!({
                "reported": {
                    "sender": r.sender,
                    "group": r.group,
                    "at": r.stamp.at,
                    "content_sha256": hex::encode(Sha256::digest(&v.content)),
                    "blob": v.attachment.as_ref().map(|(a, _)| a.blob.clone()),
                }
            })),
        })
    }
}
