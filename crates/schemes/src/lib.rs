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
//! | S7 | [`private_match`] | one threshold-PSI voucher; whether it opened | at t matches, the provider decrypts their thumbnails |
//! | S6, S6f | [`on_device`] | nothing per image; every device holds the list (hashes, or a filter of them) | the device discloses the image |
//! | S8 | [`third_party`] | an HPKE capsule of the hash to a matching organisation; whether it sent a notice | the client uploads the plaintext on the organisation's notice |
//! | S8m | [`third_party_multi`] | an HPKE capsule of point-function keys to each of two organisations; per chunk, how many entries agree | the client uploads the plaintext for a candidate within the radius |
//! | S9 | [`user_report`] | a 36-byte franking tag per message; a reported message, verified | not applicable: no scanning; a recipient's report queues the image |
//!
//! A video attachment goes through every scheme frame by frame: each counted vPDQ frame as an
//! image's hash would (a request, a voucher, a check on the device), and the vPDQ rule over
//! the list decides the video ([`fingerprint`] says how, and what it adds to each view).
//!
//! Each scheme is a plugin ([`Scheme`]): its descriptor, its typed configuration and its two
//! halves live in its own file, and one line of [`registry()`] lists it. A deployment picks one
//! (`scanlab serve --scheme NAME --list FILE`); clients learn it from `GET /v1/scheme` and
//! build their half with [`Registry::client_half`]. Nothing outside this crate names a
//! scheme. Every list is
//! whatever file the deployment is handed: the matcher ([`matcher`]) cannot tell a list of abuse
//! imagery from a list of protest posters, which is the point the open letter makes.
//!
//! All cryptography is from vetted crates: HPKE (RFC 9180) through `hpke` ([`seal`]), Ed25519
//! through `ed25519-dalek`, AES-GCM attachments through the messenger (RustCrypto).
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod device_hash;
pub mod dpf;
pub mod e2ee;
pub mod enclave;
pub mod exceptional_access;
pub mod fingerprint;
pub mod matcher;
pub mod on_device;
pub mod partial_hash;
pub mod party;
pub mod private_match;
pub mod psi;
pub mod registry;
pub mod seal;
pub mod server_side;
pub mod third_party;
pub mod third_party_multi;
pub mod user_report;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use scanlab_messenger::client::ClientError;
use scanlab_messenger::scan::ScanError;
use serde_json::{Value, json};

pub use fingerprint::{Fingerprint, FrameHash, VideoScan, video_frames, video_verdict};
pub use matcher::{DEFAULT_RADIUS, MatchInfo, Matcher};
pub use registry::{Party, Registry, Scheme, Secret, SimInputs, Simulation, registry};

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
    /// This media type cannot be fingerprinted (yet).
    #[error("cannot fingerprint {0:?} attachments")]
    Media(scanlab_messenger::mls::Media),
    /// A video could not be decoded for hashing, or is over the limits.
    #[error("video: {0}")]
    Video(String),
    /// A request or capsule is malformed.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Sealing or opening failed.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    /// The enclave's attestation did not verify; nothing was sent to it.
    #[error("attestation rejected: {0}")]
    Attestation(String),
    /// A third party (the enclave, a matching organisation) could not be reached.
    #[error("third party unreachable: {0}")]
    PartyUnreachable(String),
    /// A third party answered with an error.
    #[error("third party: {0}")]
    Party(String),
    /// Reading or writing a party's storage failed.
    #[error(transparent)]
    Store(#[from] scanlab_messenger::StoreError),
}

impl From<SchemeError> for ScanError {
    fn from(e: SchemeError) -> ScanError {
        match e {
            SchemeError::Store(s) => ScanError::Store(s),
            SchemeError::Config(m) => ScanError::Internal(m),
            SchemeError::PartyUnreachable(m) => ScanError::Unavailable(m),
            SchemeError::Party(m) => ScanError::Upstream(m),
            SchemeError::Attestation(m) => ScanError::Refused(m),
            e @ (SchemeError::Image(_)
            | SchemeError::TooSmall
            | SchemeError::Media(_)
            | SchemeError::Video(_)
            | SchemeError::Malformed(_)
            | SchemeError::Seal(_)) => ScanError::Malformed(e.to_string()),
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

/// Parses a scheme's typed configuration from JSON (what `scanlab serve`'s flags say). The
/// error names the flag: each field is the flag of the same name (`list` is `--list`).
pub fn config<T: serde::de::DeserializeOwned>(scheme: &str, v: &Value) -> Result<T, SchemeError> {
    let v = if v.is_null() { json!({}) } else { v.clone() };
    serde_json::from_value(v).map_err(|e| {
        let msg = e.to_string();
        let flag = msg
            .split('`')
            .nth(1)
            .map(|f| format!(" (--{})", f.replace('_', "-")))
            .unwrap_or_default();
        SchemeError::Config(format!("{scheme}: {msg}{flag}"))
    })
}

/// Reads a list file for a scheme's configuration.
pub fn read_list(path: &std::path::Path) -> Result<scanlab_hashlist::HashList, SchemeError> {
    let bytes = std::fs::read(path)
        .map_err(|e| SchemeError::Config(format!("reading {}: {e}", path.display())))?;
    scanlab_hashlist::HashList::read(&bytes)
        .map(|(l, _)| l)
        .map_err(|e| SchemeError::Config(format!("parsing the list {}: {e}", path.display())))
}

/// Decodes an image as the hash expects it: Pillow-exact RGB with default limits, unless the
/// process default was switched to the fast path (`scanlab evaluate --fast-decode`, through
/// [`scanlab_imaging::set_fast_decode_default`]).
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

/// Writes `bytes` to a new file at `path` that only its owner can read (0600), replacing
/// any file there.
pub(crate) fn write_secret_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), SchemeError> {
    let err = |e: std::io::Error| SchemeError::Config(format!("{}: {e}", path.display()));
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(path).map_err(err)?, bytes).map_err(err)
}

/// A provider's 32-byte secret: kept in `path` ([`load_or_create_secret`]), or, with no path,
/// fresh for this process.
pub fn secret_or_fresh(
    path: Option<&std::path::Path>,
) -> Result<zeroize::Zeroizing<[u8; 32]>, SchemeError> {
    match path {
        Some(path) => load_or_create_secret(path),
        None => {
            use rand::RngCore;
            let mut s = zeroize::Zeroizing::new([0u8; 32]);
            rand::rng().fill_bytes(s.as_mut());
            Ok(s)
        }
    }
}

/// A client half's 32-byte seed: expanded from `seed` (ChaCha20) for simulations, or fresh.
pub(crate) fn client_seed(seed: Option<u64>) -> [u8; 32] {
    use rand::{RngCore, SeedableRng};
    let mut s = [0u8; 32];
    match seed {
        Some(seed) => rand_chacha::ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut s),
        None => rand::rng().fill_bytes(&mut s),
    }
    s
}

/// A 32-byte secret kept in `path` as hex: read if the file exists, else drawn at random and
/// written there (0600).
pub fn load_or_create_secret(
    path: &std::path::Path,
) -> Result<zeroize::Zeroizing<[u8; 32]>, SchemeError> {
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes =
                zeroize::Zeroizing::new(hex::decode(text.trim()).map_err(|e| {
                    SchemeError::Config(format!("{}: not hex: {e}", path.display()))
                })?);
            if bytes.len() != 32 {
                return Err(SchemeError::Config(format!(
                    "{}: {} bytes, not 32",
                    path.display(),
                    bytes.len()
                )));
            }
            out.copy_from_slice(&bytes);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| SchemeError::Config(format!("{}: {e}", dir.display())))?;
            }
            rand::rng().fill_bytes(out.as_mut());
            write_secret_file(path, zeroize::Zeroizing::new(hex::encode(*out)).as_bytes())?;
        }
        Err(e) => return Err(SchemeError::Config(format!("{}: {e}", path.display()))),
    }
    Ok(out)
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
