//! S2 `exceptional-access`: end-to-end encryption with key escrow, the Commission paper's "E2EE
//! with exceptional access".
//!
//! - **Client half:** seals each application message's plaintext — its text and its attachment
//!   reference, which holds the attachment's AES-256-GCM key — to the escrow authority's public
//!   key with HPKE, and sends the capsule beside the MLS ciphertext. (openmls does not expose
//!   per-message keys; sealing the plaintext they protect gives the authority exactly what a
//!   message key would.)
//! - **Provider half:** refuses an application message without a valid capsule, stores the
//!   capsules (they are in the provider view). It cannot open them.
//! - **Access:** whoever holds the escrow key — or can compel, steal or leak it — reads every
//!   stored message and image from the provider's data: [`Authority::recover`], `scanlab escrow decrypt`.
//!   There is no matching; access is on demand, for any content.
//!
//! # The capsule, bound and checked
//! For a message of sender `s` in chat `c` whose MLS ciphertext is `C`:
//! 1. Before encryption the sender draws a fresh 32-byte `seed` and puts it *inside* the
//!    plaintext `P` (`P.scheme.escrow_seed`), which only the recipients decrypt.
//! 2. `binding = "scanlab-escrow-binding-v1 chat=c sender=s ct=hex(SHA-256(C))"`, as text (chat
//!    and account names are validated ids, so the fields cannot run into each other). It is
//!    sent beside the capsule, so anyone holding the key knows what to open it with.
//! 3. `capsule = HPKE.Seal(escrow_pk, info = "scanlab-escrow-v1", aad = binding, P)` with the
//!    encapsulation randomness drawn from `seed` ([`seal::seal_seeded`]).
//! 4. `signature = Ed25519(identity key of s, scheme context ‖ binding ‖ SHA-256(capsule))`
//!    ([`scanlab_messenger::scan::ClientCtx::sign`]).
//!
//! The **provider** verifies the signature under the account's registered identity key and the
//! ciphertext it relays, so a message without a capsule, or with one made for another message,
//! sender or chat, is refused (400). Each **recipient**, holding `P` and so the seed, re-runs
//! step 3 and compares capsules byte for byte, and verifies the signature under the identity
//! key of the sender's verified MLS credential: a capsule that does not hold exactly the message
//! received (a modified sender sealing something else, to evade) is refused and reported as a
//! failed message. The **authority** verifies the signature before trusting a record, under a
//! key the provider's key-transparency log ([`scanlab_messenger::kt`]) holds for the sender,
//! checked against a head the authority obtained independently (the one an account's
//! `scanlab client monitor` printed: [`Authority::with_key_transparency`]). The provider, which
//! also holds the escrow public key, can then forge a record only under a key it logged for the
//! sender, which the sender's own monitoring reports as a ghost; [`Recovered::sender_keys`]
//! shows a second key at once. Without a head the authority must take the provider's copy of
//! the log on trust, and the record says so ([`Recovered::anchored`]).
//! This is verification by re-encryption, the check of the Fujisaki–Okamoto transform
//! (Fujisaki and Okamoto, CRYPTO 1999): the randomness goes to those entitled to the
//! plaintext, who recompute the ciphertext. Revealing the seed to recipients costs nothing:
//! they read `P` anyway. What it cannot stop: sender and recipient both running modified
//! clients, who then talk past escrow; and two honest users are still read by the authority.
//!
//! Handshake messages (MLS commits and welcomes) carry no capsule: they hold no content, and a
//! recipient refuses content that arrives in a handshake envelope.

use crate::seal::{self, KeyPair};
use crate::{Scheme, SchemeError, Secret, SimInputs, Simulation, b64, b64_field};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::{AttachmentRef, open_attachment};
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Delivered, Envelope, IncomingMessage, OutgoingMessage, ProviderScheme,
    ScanCtx, ScanError, verify_scheme_signature,
};
use scanlab_messenger::{RecordKind, Recorder, SqliteStore, Store, ViewRecord};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// HPKE `info` of escrow capsules.
pub const INFO: &[u8] = b"scanlab-escrow-v1";

/// S2's descriptor.
pub struct ExceptionalAccess;

/// S2's configuration: the escrow authority's public key. There is no S2 without one.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file holding the authority's public key, hex (`scanlab escrow keygen`).
    pub escrow_pub: PathBuf,
}

/// The fields S2 adds to every application message.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fields {
    /// The capsule, base64.
    pub escrow: String,
    /// The binding the capsule is sealed and signed under (its associated data).
    pub bound: String,
    /// The sender's signature over the binding and the capsule's hash, hex.
    pub signature: String,
}

const BINDING_CONTEXT: &str = "scanlab-escrow-binding-v1";
/// The scheme name the signatures are made under.
const NAME: &str = "exceptional-access";

/// What a capsule is bound to: chat, sender and the MLS ciphertext's hash.
pub fn binding(chat: &str, sender: &str, ciphertext_sha256: &[u8; 32]) -> String {
    format!(
        "{BINDING_CONTEXT} chat={chat} sender={sender} ct={}",
        hex::encode(ciphertext_sha256)
    )
}

/// What the sender signs: the binding and the capsule's hash.
fn signed(binding: &str, capsule: &[u8]) -> Vec<u8> {
    [binding.as_bytes(), &Sha256::digest(capsule)[..]].concat()
}

/// A capsule and its signature, decoded.
struct Escrowed {
    capsule: Vec<u8>,
    bound: String,
    signature: [u8; 64],
}

impl Escrowed {
    fn parse(fields: &Value) -> Result<Escrowed, SchemeError> {
        let f: Fields = serde_json::from_value(fields.clone())
            .map_err(|e| SchemeError::Malformed(format!("escrow fields: {e}")))?;
        let capsule = b64_field(&json!({ "e": f.escrow }), "e")?;
        if capsule.len() < seal::ENC_LEN + 16 {
            return Err(SchemeError::Malformed("escrow capsule too short".into()));
        }
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&f.signature, &mut signature)
            .map_err(|_| SchemeError::Malformed("escrow signature: 128 hex characters".into()))?;
        Ok(Escrowed {
            capsule,
            bound: f.bound,
            signature,
        })
    }

    /// Whether `key` signed this capsule for `binding`, and the capsule names that binding.
    fn signed_by(&self, key: &[u8; 32], binding: &str) -> bool {
        self.bound == binding
            && verify_scheme_signature(key, NAME, &signed(binding, &self.capsule), &self.signature)
    }
}

/// The parameters clients download.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// The authority's key, hex.
    pub escrow_public: String,
}

impl Scheme for ExceptionalAccess {
    fn code(&self) -> &'static str {
        "S2"
    }
    fn name(&self) -> &'static str {
        "exceptional-access"
    }
    fn summary(&self) -> &'static str {
        "every message is sealed to an escrow authority's key beside its MLS ciphertext"
    }
    fn explanation(&self) -> &'static str {
        "Exceptional access, or key escrow: beside its MLS ciphertext every message is also sealed to an escrow authority's public key and kept by the provider. The provider alone reads nothing and nothing is matched, but whoever holds, steals or compels the escrow key opens every message ever stored, innocent or not."
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        let text = std::fs::read_to_string(&c.escrow_pub)
            .map_err(|e| SchemeError::Config(format!("reading {}: {e}", c.escrow_pub.display())))?;
        Ok(Arc::new(Provider::new(seal::public_from_hex(text.trim())?)))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client::from_params(params)?))
    }
    fn simulate(&self, _inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let k = Arc::new(KeyPair::generate());
        Ok(Simulation {
            provider: Arc::new(Provider::new(k.public())),
            parties: Vec::new(),
            secrets: vec![Secret {
                holder: "escrow authority".into(),
                key: k,
                info: INFO.to_vec(),
            }],
        })
    }
}

/// S2's client half.
pub struct Client {
    escrow: [u8; 32],
}

fn refused(m: impl std::fmt::Display) -> ClientError {
    ClientError::Scheme(format!("escrow: {m}; the message is refused"))
}

impl Client {
    /// A client sealing to the escrow key the provider announces (`params.escrow_public`).
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        let p: Params = serde_json::from_value(params.clone())
            .map_err(|e| SchemeError::Malformed(format!("scheme parameters: {e}")))?;
        Ok(Client {
            escrow: seal::public_from_hex(&p.escrow_public)?,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "exceptional-access"
    }
    fn inner_fields(&mut self, _: &ClientCtx, _chat: &str) -> Result<Option<Value>, ClientError> {
        use rand::RngCore;
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(seed.as_mut());
        Ok(Some(json!({ "escrow_seed": hex::encode(seed.as_ref()) })))
    }
    fn message_fields(
        &mut self,
        ctx: &ClientCtx,
        m: &OutgoingMessage,
    ) -> Result<Option<Value>, ClientError> {
        let seed = seed_of(m.plaintext).map_err(refused)?;
        let b = binding(m.chat, ctx.account(), &Sha256::digest(m.ciphertext).into());
        let capsule = seal::seal_seeded(&self.escrow, INFO, b.as_bytes(), m.plaintext, &seed)
            .map_err(SchemeError::from)?;
        Ok(Some(json!(Fields {
            escrow: b64(&capsule),
            signature: hex::encode(ctx.sign(&signed(&b, &capsule))),
            bound: b,
        })))
    }
    fn on_receive(&mut self, _: &ClientCtx, m: &Delivered) -> Result<(), ClientError> {
        let e = m
            .fields
            .as_ref()
            .ok_or_else(|| refused("it carries no capsule"))
            .and_then(|f| Escrowed::parse(f).map_err(refused))?;
        let mut ct_hash = [0u8; 32];
        hex::decode_to_slice(&m.ciphertext_sha256, &mut ct_hash).map_err(refused)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&m.sender_key, &mut key).map_err(refused)?;
        let b = binding(&m.chat, &m.from, &ct_hash);
        if !e.signed_by(&key, &b) {
            return Err(refused(format!(
                "the capsule is not signed by {} for this message",
                m.from
            )));
        }
        let seed = seed_of(&m.plaintext).map_err(refused)?;
        let again = seal::seal_seeded(&self.escrow, INFO, b.as_bytes(), &m.plaintext, &seed)
            .map_err(SchemeError::from)?;
        if again != e.capsule {
            return Err(refused(format!(
                "the capsule {} sent does not hold the message received",
                m.from
            )));
        }
        Ok(())
    }
}

/// S2's provider half.
pub struct Provider {
    escrow: [u8; 32],
}

impl Provider {
    /// Announces `escrow` as the key clients seal to.
    pub fn new(escrow: [u8; 32]) -> Provider {
        Provider { escrow }
    }
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "exceptional-access"
    }
    fn public_params(&self) -> Value {
        json!(Params {
            escrow_public: hex::encode(self.escrow)
        })
    }
    fn on_message(&self, ctx: &ScanCtx, m: &IncomingMessage) -> Result<Option<Value>, ScanError> {
        if m.kind != Envelope::Application {
            return Ok(None);
        }
        let Some(f) = m.fields else {
            return Err(ScanError::Malformed(
                "an application message needs an escrow capsule under this scheme".into(),
            ));
        };
        let e = Escrowed::parse(f)?;
        let key = ctx
            .identity_key(ctx.who())?
            .ok_or_else(|| ScanError::Internal("sender without an identity key".into()))?;
        let b = binding(m.group, ctx.who(), &Sha256::digest(m.ciphertext).into());
        if !e.signed_by(&key, &b) {
            return Err(ScanError::Malformed(
                "the escrow capsule is not signed by the sender for this ciphertext".into(),
            ));
        }
        Ok(Some(json!({ "escrow_capsule_len": e.capsule.len() })))
    }
}

/// The seed the sender put inside the plaintext.
fn seed_of(plaintext: &[u8]) -> Result<zeroize::Zeroizing<[u8; 32]>, String> {
    let v: Value = serde_json::from_slice(plaintext).map_err(|e| e.to_string())?;
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    v["scheme"]["escrow_seed"]
        .as_str()
        .and_then(|s| hex::decode_to_slice(s, seed.as_mut()).ok())
        .ok_or("the message carries no escrow seed")?;
    Ok(seed)
}

/// One message the escrow authority recovered.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Recovered {
    /// Provider-view sequence number of the message's delivery request.
    pub seq: i64,
    /// When the provider received it (ms since the epoch).
    pub at_ms: i64,
    /// The sender.
    pub sender: Option<String>,
    /// The chat.
    pub chat: String,
    /// The text, if any.
    pub text: Option<String>,
    /// Whether a key logged for the sender signed this capsule for this message: a record the
    /// provider, which holds the escrow public key too, could not have forged without logging
    /// a key for the sender.
    pub signed: bool,
    /// How many keys the key-transparency log holds for the sender: one for an account that
    /// registered once; more means some key was logged for it that its owner may not hold.
    pub sender_keys: usize,
    /// Whether the log was checked against an independently obtained head; if not, `signed`
    /// rests on the provider's copy of its log.
    pub anchored: bool,
    /// The decrypted attachment, if any.
    #[serde(skip)]
    pub image: Option<Vec<u8>>,
    /// Why something could not be recovered, if so.
    pub error: Option<String>,
}

/// The escrow authority: its key, and its own recorded view of everything it is handed and
/// everything it opens (`DIR/authority.sqlite`).
pub struct Authority {
    key: KeyPair,
    recorder: Recorder,
    /// The provider's log key and a head of its key-transparency log, obtained apart from
    /// the provider's data.
    anchor: Option<(ed25519_dalek::VerifyingKey, scanlab_messenger::kt::KtHead)>,
}

impl Authority {
    /// The authority holding `key`, recording into `view_dir`.
    pub fn open(key: KeyPair, view_dir: &Path) -> Result<Authority, SchemeError> {
        Ok(Authority {
            key,
            recorder: Recorder::new(Box::new(SqliteStore::open_party(view_dir, "authority")?)),
            anchor: None,
        })
    }

    /// Checks the provider's key-transparency log against `head`, signed by `log_key` (the
    /// provider's id), before relying on any key in it: the copy handed over must extend the
    /// log the head signs, and only keys within the head count.
    pub fn with_key_transparency(
        mut self,
        log_key: ed25519_dalek::VerifyingKey,
        head: scanlab_messenger::kt::KtHead,
    ) -> Authority {
        self.anchor = Some((log_key, head));
        self
    }

    /// The keys the provider's log holds for `sender`, checked against the anchor if any.
    fn sender_keys(
        &self,
        leaves: &[(String, [u8; 32])],
        sender: &str,
    ) -> Result<Vec<[u8; 32]>, SchemeError> {
        match &self.anchor {
            Some((log, head)) => scanlab_messenger::kt::logged_keys(log, head, leaves, sender)
                .map_err(|e| {
                    SchemeError::Malformed(format!(
                        "the provider's key-transparency log does not match the head given: {e}"
                    ))
                }),
            None => Ok(leaves
                .iter()
                .filter(|(n, _)| n == sender)
                .map(|(_, k)| *k)
                .collect()),
        }
    }

    /// The authority's view so far.
    pub fn view(&self) -> Result<Vec<ViewRecord>, SchemeError> {
        Ok(self.recorder.view()?)
    }

    /// Lawful access to a provider's data directory: the provider hands over every escrow
    /// capsule it stored, and the blobs the opened capsules refer to. Each is recorded in the
    /// authority's view as `received` (blobs by length and digest), and each message opened as
    /// `derived`. Returns every escrowed message, with its text and attachment.
    pub fn recover(&self, data: &Path) -> Result<Vec<Recovered>, SchemeError> {
        let mut store = SqliteStore::open(data)?;
        let leaves = store.kt_leaves()?;
        let mut out = Vec::new();
        for r in store.view()? {
            if r.kind != RecordKind::Received || r.endpoint != "POST /v1/messages" {
                continue;
            }
            let Some(body) = r.json() else { continue };
            let Some(escrow) = body["scheme"].get("escrow").and_then(Value::as_str) else {
                continue;
            };
            let chat = body["group"].as_str().unwrap_or_default().to_string();
            let mut got = ViewRecord::of(
                RecordKind::Received,
                r.who.clone(),
                "escrow capsule",
                escrow.as_bytes(),
                true,
            );
            got.extra = Some(json!({ "provider_seq": r.seq, "chat": chat }).to_string());
            self.recorder.record(got)?;
            let sender = r.who.clone().unwrap_or_default();
            let payload = b64_field(&body, "payload").unwrap_or_default();
            let b = binding(
                &chat,
                &sender,
                &Sha256::digest(payload.get(1..).unwrap_or_default()).into(),
            );
            let keys = self.sender_keys(&leaves, &sender)?;
            let signed = Escrowed::parse(&body["scheme"])
                .is_ok_and(|e| keys.iter().any(|k| e.signed_by(k, &b)));
            let mut rec = Recovered {
                seq: r.seq,
                at_ms: r.at_ms,
                sender: r.who.clone(),
                chat: chat.clone(),
                text: None,
                signed,
                sender_keys: keys.len(),
                anchored: self.anchor.is_some(),
                image: None,
                error: None,
            };
            let opened = b64_field(&json!({ "e": escrow }), "e").and_then(|c| {
                self.key
                    .open(INFO, b.as_bytes(), &c)
                    .map_err(SchemeError::from)
            });
            match opened {
                Ok(pt) => {
                    self.recorder.record(ViewRecord::of(
                        RecordKind::Derived,
                        r.who.clone(),
                        "escrow capsule",
                        &pt,
                        true,
                    ))?;
                    let v: Value = serde_json::from_slice(&pt)
                        .map_err(|e| SchemeError::Malformed(e.to_string()))?;
                    rec.text = v["text"].as_str().map(str::to_string);
                    if let Ok(a) = serde_json::from_value::<AttachmentRef>(v["attachment"].clone())
                    {
                        match store.get_blob(&a.blob)? {
                            Some(blob) => {
                                self.recorder.record(ViewRecord::of(
                                    RecordKind::Received,
                                    r.who.clone(),
                                    &format!("blob {}", a.blob),
                                    &blob,
                                    false,
                                ))?;
                                match open_attachment(&blob, &a) {
                                    Ok(img) => {
                                        self.recorder.record(ViewRecord::of(
                                            RecordKind::Derived,
                                            r.who.clone(),
                                            &format!("blob {}", a.blob),
                                            &img,
                                            false,
                                        ))?;
                                        rec.image = Some(img)
                                    }
                                    Err(e) => rec.error = Some(format!("attachment: {e}")),
                                }
                            }
                            None => rec.error = Some(format!("blob {} is gone", a.blob)),
                        }
                    }
                }
                Err(e) => rec.error = Some(e.to_string()),
            }
            out.push(rec);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use scanlab_messenger::kt;

    /// The message record a provider keeps for `sender`'s application message `ct`, its
    /// capsule signed with `key`.
    fn record(escrow: &KeyPair, sender: &str, key: &SigningKey, ct: &[u8]) -> ViewRecord {
        let b = binding("g", sender, &Sha256::digest(ct).into());
        let capsule = seal::seal_seeded(
            &escrow.public(),
            INFO,
            b.as_bytes(),
            br#"{"text":"hi"}"#,
            &[7; 32],
        )
        .unwrap();
        let sig = scanlab_messenger::scan::scheme_signature(key, NAME, &signed(&b, &capsule));
        let body = json!({"group": "g", "recipients": ["bob"], "payload": b64(&[&[0u8][..], ct].concat()),
            "scheme": Fields { escrow: b64(&capsule), signature: hex::encode(sig), bound: b }});
        ViewRecord::of(
            RecordKind::Received,
            Some(sender.into()),
            "POST /v1/messages",
            body.to_string().as_bytes(),
            true,
        )
    }

    #[test]
    fn a_record_forged_under_a_ghost_key_is_caught_by_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("provider");
        let escrow = KeyPair::generate();
        let (alice, ghost) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[0x66; 32]),
        );
        let log = SigningKey::from_bytes(&[9; 32]);
        let head = {
            let mut s = SqliteStore::open(&data).unwrap();
            s.register("alice", alice.verifying_key().as_bytes())
                .unwrap();
            s.record(&record(&escrow, "alice", &alice, b"ct-1"))
                .unwrap();
            // The head Alice's monitoring saw, before the provider forged anything.
            let head = kt::sign_head(&log, &s.kt_leaves().unwrap(), 100);
            // The provider logs a key of its own for "alice" and forges a record under it.
            s.kt_append("alice", ghost.verifying_key().as_bytes())
                .unwrap();
            s.record(&record(&escrow, "alice", &ghost, b"ct-2"))
                .unwrap();
            head
        };
        // And points its directory at the ghost key, which is all a check against the
        // directory would see.
        rusqlite::Connection::open(data.join("provider.sqlite"))
            .unwrap()
            .execute(
                "UPDATE accounts SET identity_key = ?1 WHERE name = 'alice'",
                [ghost.verifying_key().as_bytes().to_vec()],
            )
            .unwrap();
        let open = |n: &str| {
            Authority::open(
                KeyPair::from_secret(escrow.secret_bytes().as_ref()).unwrap(),
                &dir.path().join(n),
            )
            .unwrap()
        };
        let sum = |r: &[Recovered]| {
            r.iter()
                .map(|m| (m.signed, m.sender_keys, m.anchored))
                .collect::<Vec<_>>()
        };
        // On the provider's word alone, both look signed; the second key shows at once.
        let plain = open("a").recover(&data).unwrap();
        assert_eq!(sum(&plain), [(true, 2, false), (true, 2, false)]);
        // Against the head Alice saw, only her own record is signed.
        let anchored = open("b")
            .with_key_transparency(log.verifying_key(), head.clone())
            .recover(&data)
            .unwrap();
        assert_eq!(sum(&anchored), [(true, 1, true), (false, 1, true)]);
        // A head not signed by the provider's log key anchors nothing.
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(
            open("c")
                .with_key_transparency(other, head)
                .recover(&data)
                .is_err()
        );
    }
}
