//! S2 `exceptional-access`: end-to-end encryption with key escrow, the Commission paper's "E2EE
//! with exceptional access".
//!
//! - **Client half:** before encryption, seals each application message's plaintext — its text
//!   and its attachment reference, which holds the attachment's AES-256-GCM key — to the escrow
//!   authority's public key with HPKE, and sends the capsule beside the MLS ciphertext. (openmls
//!   does not expose per-message keys; sealing the plaintext they protect gives the authority
//!   exactly what a message key would.)
//!   - Capsule: `HPKE.Seal(escrow_pk, info = "scanlab-escrow-v1", aad = chat id, plaintext)`,
//!     see [`crate::seal`].
//! - **Provider half:** stores the capsules (they are in the provider view) and checks that each
//!   is well formed. It cannot open them.
//! - **Access:** whoever holds the escrow key — or can compel, steal or leak it — reads every
//!   stored message and image from the provider's data: [`Authority::recover`], `scanlab escrow decrypt`.
//!   There is no matching; access is on demand, for any content.
//!
//! Handshake messages (MLS commits and welcomes) carry no capsule: they hold no content.

use crate::seal::{self, KeyPair};
use crate::{Scheme, SchemeError, Secret, SimInputs, Simulation, b64, b64_field};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::{AttachmentRef, open_attachment};
use scanlab_messenger::scan::{ClientCtx, ClientScheme, ProviderScheme, ScanCtx, ScanError};
use scanlab_messenger::{RecordKind, Recorder, SqliteStore, Store, ViewRecord};
use serde_json::{Value, json};
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
    fn message_fields(
        &mut self,
        _: &ClientCtx,
        chat: &str,
        plaintext: &[u8],
    ) -> Result<Option<Value>, ClientError> {
        let capsule = seal::seal(&self.escrow, INFO, chat.as_bytes(), plaintext)
            .map_err(SchemeError::from)?;
        Ok(Some(json!(Fields {
            escrow: b64(&capsule)
        })))
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
    fn on_message(&self, _: &ScanCtx, fields: Option<&Value>) -> Result<Option<Value>, ScanError> {
        let Some(f) = fields else { return Ok(None) };
        let f: Fields = crate::device_hash::parse(f)?;
        let capsule = b64_field(&json!({ "e": f.escrow }), "e")?;
        if capsule.len() < seal::ENC_LEN + 16 {
            return Err(SchemeError::Malformed("escrow capsule too short".into()).into());
        }
        Ok(Some(json!({ "escrow_capsule_len": capsule.len() })))
    }
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
}

impl Authority {
    /// The authority holding `key`, recording into `view_dir`.
    pub fn open(key: KeyPair, view_dir: &Path) -> Result<Authority, SchemeError> {
        Ok(Authority {
            key,
            recorder: Recorder::new(Box::new(SqliteStore::open_party(view_dir, "authority")?)),
        })
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
            let mut rec = Recovered {
                seq: r.seq,
                at_ms: r.at_ms,
                sender: r.who.clone(),
                chat: chat.clone(),
                text: None,
                image: None,
                error: None,
            };
            let opened = b64_field(&json!({ "e": escrow }), "e").and_then(|c| {
                self.key
                    .open(INFO, chat.as_bytes(), &c)
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
