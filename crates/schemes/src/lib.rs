//! The detection schemes, each a pluggable module of scanlab's messenger: a client half that
//! runs on the device (before encryption on send) and a provider half, side by side in one file
//! per scheme, both implementing the messenger's [`scanlab_messenger::scan`] traits.
//!
//! | id | module | what the provider gets per image | on a match |
//! |---|---|---|---|
//! | S0 | [`e2ee`] | ciphertext and metadata only | nothing happens |
//! | S1 | [`server_side`] | the attachment key, so the whole image | the provider queues it for review itself |
//! | S2 | [`exceptional_access`] | an HPKE capsule of every message to an escrow key | not applicable: access on demand |
//! | S3 | [`device_hash`] | the 256-bit PDQ hash | the client uploads the plaintext for review |
//! | S4 | [`partial_hash`] | a 64×64 luminance or 16×16 DCT; the provider finishes the hash | as S3 |
//! | S5 | [`enclave`] | an HPKE capsule to an attested enclave, and its verdict | the enclave forwards the image |
//!
//! A deployment picks one ([`Deployment`], `scanlab serve --scheme NAME --list FILE`); clients
//! learn it from `GET /v1/scheme` and build their half with [`client_half`]. Every list is
//! whatever file the deployment is handed: the matcher ([`matcher`]) cannot tell a list of abuse
//! imagery from a list of protest posters, which is the point the open letter makes.
//!
//! All cryptography is from vetted crates: HPKE (RFC 9180) through `hpke` ([`seal`]), Ed25519
//! through `ed25519-dalek`, AES-GCM attachments through the messenger (RustCrypto).
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod device_hash;
pub mod e2ee;
pub mod enclave;
pub mod exceptional_access;
pub mod matcher;
pub mod partial_hash;
pub mod seal;
pub mod server_side;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use scanlab_hashlist::HashList;
use scanlab_messenger::client::ClientError;
use scanlab_messenger::provider::ApiError;
use scanlab_messenger::scan::{ClientScheme, ProviderScheme};
use serde_json::{Value, json};
use std::sync::Arc;

pub use matcher::{DEFAULT_RADIUS, MatchInfo, Matcher};

/// The schemes, by the ids of `schemes.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum SchemeId {
    /// S0: MLS with nothing added.
    E2ee,
    /// S1: the provider reads attachments and matches them itself (pre-E2EE practice).
    ServerSide,
    /// S2: every message key escrowed to an authority.
    ExceptionalAccess,
    /// S3: the device sends each image's PDQ hash.
    DeviceHash,
    /// S4: the device sends a PDQ intermediate; the provider finishes the hash.
    PartialHash,
    /// S5: the image goes, sealed, to an attested enclave at the provider.
    Enclave,
}

impl SchemeId {
    /// Every implemented scheme, in order.
    pub const ALL: [SchemeId; 6] = [
        SchemeId::E2ee,
        SchemeId::ServerSide,
        SchemeId::ExceptionalAccess,
        SchemeId::DeviceHash,
        SchemeId::PartialHash,
        SchemeId::Enclave,
    ];

    /// The name `--scheme` takes.
    pub fn name(self) -> &'static str {
        match self {
            SchemeId::E2ee => "e2ee",
            SchemeId::ServerSide => "server-side",
            SchemeId::ExceptionalAccess => "exceptional-access",
            SchemeId::DeviceHash => "device-hash",
            SchemeId::PartialHash => "partial-hash",
            SchemeId::Enclave => "enclave",
        }
    }

    /// `S0` … `S5`.
    pub fn code(self) -> &'static str {
        ["S0", "S1", "S2", "S3", "S4", "S5"][self as usize]
    }

    /// Whether the scheme matches images against a list.
    pub fn matches(self) -> bool {
        !matches!(self, SchemeId::E2ee | SchemeId::ExceptionalAccess)
    }
}

impl std::str::FromStr for SchemeId {
    type Err = SchemeError;
    fn from_str(s: &str) -> Result<Self, SchemeError> {
        SchemeId::ALL
            .into_iter()
            .find(|id| id.name() == s || id.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                SchemeError::Config(format!(
                    "unknown scheme {s:?}; known: {}",
                    SchemeId::ALL.map(|i| i.name()).join(", ")
                ))
            })
    }
}

impl std::fmt::Display for SchemeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a scheme operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// The deployment is misconfigured (missing list, key or enclave).
    #[error("configuration: {0}")]
    Config(String),
    /// An image could not be decoded for hashing.
    #[error("image: {0}")]
    Image(#[from] scanlab_imaging::ImageError),
    /// An image is too small for PDQ (under 5 pixels on a side).
    #[error("image too small to hash")]
    TooSmall,
    /// A request or capsule is malformed.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Sealing or opening failed.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    /// The enclave's attestation did not verify; nothing was sent to it.
    #[error("attestation rejected: {0}")]
    Attestation(String),
    /// The enclave could not be reached or refused.
    #[error("enclave: {0}")]
    Enclave(String),
    /// Reading the provider's storage failed.
    #[error(transparent)]
    Store(#[from] scanlab_messenger::StoreError),
}

impl From<SchemeError> for ApiError {
    fn from(e: SchemeError) -> ApiError {
        match e {
            SchemeError::Store(s) => ApiError::Store(s),
            e => ApiError::Scheme(e.to_string()),
        }
    }
}

impl From<SchemeError> for ClientError {
    fn from(e: SchemeError) -> ClientError {
        ClientError::Scheme(e.to_string())
    }
}

/// PDQ split point of the partial-hashing scheme (S4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The 64×64 filtered luminance (a grayscale thumbnail): 16 KiB.
    #[default]
    Luma64,
    /// The 16×16 DCT coefficients (its low-pass spectrum): 1 KiB.
    Dct16,
}

impl std::str::FromStr for Split {
    type Err = SchemeError;
    fn from_str(s: &str) -> Result<Self, SchemeError> {
        match s {
            "luma64" => Ok(Split::Luma64),
            "dct16" => Ok(Split::Dct16),
            _ => Err(SchemeError::Config(format!(
                "unknown split {s:?}; use luma64 or dct16"
            ))),
        }
    }
}

/// What a provider deploys.
pub struct Deployment {
    /// The scheme.
    pub scheme: SchemeId,
    /// The list to match (ignored by S0 and S2).
    pub list: HashList,
    /// Match radius (default 31).
    pub radius: u32,
    /// S4's split point.
    pub split: Split,
    /// S2's escrow authority public key.
    pub escrow_public: Option<[u8; 32]>,
    /// S5's enclave.
    pub enclave: Option<enclave::EnclaveLink>,
    /// S5's allow-list of enclave measurements (hex) that clients accept; empty means the
    /// measurement of the attached enclave. The provider controls it, which the evaluation
    /// examines.
    pub allow: Vec<String>,
}

impl Deployment {
    /// A deployment of `scheme` with `list` and defaults for the rest.
    pub fn new(scheme: SchemeId, list: HashList) -> Deployment {
        Deployment {
            scheme,
            list,
            radius: DEFAULT_RADIUS,
            split: Split::Luma64,
            escrow_public: None,
            enclave: None,
            allow: Vec::new(),
        }
    }
}

/// The provider half of a deployment.
pub fn provider_half(d: Deployment) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
    let matcher = || Matcher::new(d.list.clone(), d.radius);
    Ok(match d.scheme {
        SchemeId::E2ee => Arc::new(e2ee::Provider),
        SchemeId::ServerSide => Arc::new(server_side::Provider::new(matcher()?)),
        SchemeId::ExceptionalAccess => Arc::new(exceptional_access::Provider::new(
            d.escrow_public.ok_or_else(|| {
                SchemeError::Config(
                    "exceptional-access needs the escrow authority's public key (--escrow-pub)"
                        .into(),
                )
            })?,
        )),
        SchemeId::DeviceHash => Arc::new(device_hash::Provider::new(matcher()?)),
        SchemeId::PartialHash => Arc::new(partial_hash::Provider::new(matcher()?, d.split)),
        SchemeId::Enclave => Arc::new(enclave::Provider::new(
            d.enclave.ok_or_else(|| {
                SchemeError::Config("enclave needs an enclave (--enclave URL)".into())
            })?,
            d.allow,
        )?),
    })
}

/// The client half for what a provider announces at `GET /v1/scheme` (`{name, params}`).
/// S5's half verifies the enclave's attestation here, before anything is sealed to it.
pub fn client_half(info: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
    let name = info["name"].as_str().unwrap_or_default();
    let params = &info["params"];
    let id: SchemeId = name.parse()?;
    Ok(match id {
        SchemeId::E2ee => Box::new(e2ee::Client),
        SchemeId::ServerSide => Box::new(server_side::Client),
        SchemeId::ExceptionalAccess => Box::new(exceptional_access::Client::from_params(params)?),
        SchemeId::DeviceHash => Box::new(device_hash::Client),
        SchemeId::PartialHash => Box::new(partial_hash::Client::from_params(params)?),
        SchemeId::Enclave => Box::new(enclave::Client::from_params(params)?),
    })
}

/// Decodes an image as the hash expects it (Pillow-exact RGB, default limits).
pub fn decode_image(bytes: &[u8]) -> Result<scanlab_imaging::RgbImage, SchemeError> {
    Ok(scanlab_imaging::decode(
        bytes,
        &scanlab_imaging::DecodeOptions::default(),
    )?)
}

/// PDQ of an encoded image.
pub fn pdq_of(bytes: &[u8]) -> Result<scanlab_pdq::Pdq, SchemeError> {
    let img = decode_image(bytes)?;
    let min = scanlab_pdq::MIN_HASHABLE_DIM as u32;
    if img.width() < min || img.height() < min {
        return Err(SchemeError::TooSmall);
    }
    Ok(scanlab_pdq::Hasher::new().hash(&scanlab_imaging::pdq_image(&img)))
}

/// The reply to a client for a scheme whose client half discloses on a match (S3, S4).
pub(crate) fn disclose_reply(m: &Option<MatchInfo>) -> Value {
    match m {
        Some(m) => json!({
            "match": true,
            "disclose": true,
            "reason": m.reason(),
        }),
        None => json!({ "match": false, "disclose": false }),
    }
}

pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, SchemeError> {
    v[name]
        .as_str()
        .ok_or_else(|| SchemeError::Malformed(format!("missing field {name:?}")))
}

pub(crate) fn b64_field(v: &Value, name: &str) -> Result<Vec<u8>, SchemeError> {
    B64.decode(field(v, name)?)
        .map_err(|e| SchemeError::Malformed(format!("{name}: {e}")))
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, value: u8) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([value; 3]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn only_images_under_five_pixels_are_too_small_and_a_flat_image_still_hashes() {
        // An all-black image hashes to all zeros with quality 0, which is how "too small" used
        // to be detected, so sending one failed; it is a real image that a scheme must scan.
        let flat = pdq_of(&png(64, 64, 0)).unwrap();
        assert_eq!(flat.hash, scanlab_pdq::Hash256::ZERO);
        assert!(matches!(
            pdq_of(&png(4, 100, 9)),
            Err(SchemeError::TooSmall)
        ));
        assert!(pdq_of(&png(5, 5, 9)).is_ok());
    }
}
