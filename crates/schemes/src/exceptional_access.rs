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
//!   stored message and image from the provider's data: [`recover`], `scanlab escrow decrypt`.
//!   There is no matching; access is on demand, for any content.
//!
//! Handshake messages (MLS commits and welcomes) carry no capsule: they hold no content.

use crate::seal::{self, KeyPair};
use crate::{SchemeError, b64, b64_field};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::{AttachmentRef, open_attachment};
use scanlab_messenger::provider::ApiError;
use scanlab_messenger::scan::{ClientScheme, ProviderScheme, ScanCtx, ScanOutcome};
use scanlab_messenger::{SqliteStore, Store};
use serde_json::{Value, json};
use std::path::Path;

/// HPKE `info` of escrow capsules.
pub const INFO: &[u8] = b"scanlab-escrow-v1";

/// S2's client half.
pub struct Client {
    escrow: [u8; 32],
}

impl Client {
    /// A client sealing to the escrow key the provider announces (`params.escrow_public`).
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        Ok(Client {
            escrow: seal::public_from_hex(crate::field(params, "escrow_public")?)?,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "exceptional-access"
    }
    fn scan_request(
        &mut self,
        _image: &[u8],
        _attachment: &AttachmentRef,
    ) -> Result<Option<Value>, ClientError> {
        Ok(None)
    }
    fn message_fields(
        &mut self,
        chat: &str,
        plaintext: &[u8],
    ) -> Result<Option<Value>, ClientError> {
        let capsule = seal::seal(&self.escrow, INFO, chat.as_bytes(), plaintext)
            .map_err(SchemeError::from)?;
        Ok(Some(json!({ "escrow": b64(&capsule) })))
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
        json!({ "escrow_public": hex::encode(self.escrow) })
    }
    fn scan(&self, _ctx: &ScanCtx, _request: &Value) -> Result<ScanOutcome, ApiError> {
        Err(ApiError::NotFound)
    }
    fn on_message(&self, _who: &str, fields: Option<&Value>) -> Result<Option<Value>, ApiError> {
        let Some(f) = fields else { return Ok(None) };
        let capsule = b64_field(f, "escrow")?;
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

/// Everything the escrow authority reads from a provider's data directory with its key: every
/// escrowed message, and every attachment (fetched from the provider's blob store and
/// decrypted with the key the capsule holds).
pub fn recover(data: &Path, key: &KeyPair) -> Result<Vec<Recovered>, SchemeError> {
    let mut store = SqliteStore::open(data)?;
    let mut out = Vec::new();
    for r in store.view()? {
        if r.endpoint != "POST /v1/messages" {
            continue;
        }
        let Some(body) = r
            .body
            .as_ref()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        else {
            continue;
        };
        let Some(escrow) = body["scheme"].get("escrow") else {
            continue;
        };
        let chat = body["group"].as_str().unwrap_or_default().to_string();
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
            key.open(INFO, chat.as_bytes(), &c)
                .map_err(SchemeError::from)
        });
        match opened {
            Ok(pt) => {
                let v: Value = serde_json::from_slice(&pt)
                    .map_err(|e| SchemeError::Malformed(e.to_string()))?;
                rec.text = v["text"].as_str().map(str::to_string);
                if let Ok(a) = serde_json::from_value::<AttachmentRef>(v["attachment"].clone()) {
                    match store.get_blob(&a.blob)? {
                        Some(blob) => match open_attachment(&blob, &a) {
                            Ok(img) => rec.image = Some(img),
                            Err(e) => rec.error = Some(format!("attachment: {e}")),
                        },
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
