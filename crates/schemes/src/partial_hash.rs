//! S4 `partial-hash`: the Commission paper's shortlisted "on-device partial hashing, with the
//! remaining hashing and the matching at the server".
//!
//! - **Client half:** runs PDQ up to a split point and sends the intermediate, as little-endian
//!   `f32`s in base64:
//!   - `luma64`: the 64×64 filtered luminance PDQ's DCT starts from, a grayscale thumbnail
//!     (16 KiB);
//!   - `dct16`: the 16×16 DCT coefficients, its low-pass spectrum (1 KiB).
//! - **Provider half:** finishes the hash (quality and DCT for `luma64`, the median threshold
//!   for both) — bit-exactly the hash the device would have computed — and matches it.
//! - **On a match:** as S3, the client uploads the full plaintext image for review.

use crate::{Matcher, SchemeError, Split, b64, b64_field, disclose_reply};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::AttachmentRef;
use scanlab_messenger::provider::ApiError;
use scanlab_messenger::scan::{ClientScheme, ProviderScheme, ScanCtx, ScanOutcome};
use serde_json::{Value, json};

/// The intermediate the client computes for a split point, as `f32`s in row order.
pub fn intermediate(image: &[u8], split: Split) -> Result<Vec<f32>, SchemeError> {
    let img = crate::decode_image(image)?;
    let luma = scanlab_pdq::Hasher::new()
        .luma64(&scanlab_imaging::pdq_image(&img))
        .ok_or(SchemeError::TooSmall)?;
    Ok(match split {
        Split::Luma64 => luma.iter().flatten().copied().collect(),
        Split::Dct16 => scanlab_pdq::dct16(&luma)
            .iter()
            .flatten()
            .copied()
            .collect(),
    })
}

/// Encodes `f32`s as little-endian bytes.
pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// Decodes little-endian `f32`s, refusing a wrong length or non-finite values.
pub fn from_bytes(b: &[u8], n: usize) -> Result<Vec<f32>, SchemeError> {
    if b.len() != 4 * n {
        return Err(SchemeError::Malformed(format!(
            "intermediate of {} bytes; expected {}",
            b.len(),
            4 * n
        )));
    }
    let v: Vec<f32> = b
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if v.iter().any(|f| !f.is_finite()) {
        return Err(SchemeError::Malformed(
            "intermediate has non-finite values".into(),
        ));
    }
    Ok(v)
}

/// The provider's finishing step: the hash (and, for `luma64`, the quality) of an
/// intermediate.
pub fn finish(v: &[f32], split: Split) -> (scanlab_pdq::Hash256, Option<u8>) {
    match split {
        Split::Luma64 => {
            let mut buf = [[0f32; 64]; 64];
            for (row, chunk) in buf.iter_mut().zip(v.chunks_exact(64)) {
                row.copy_from_slice(chunk);
            }
            let p = scanlab_pdq::hash_from_downsample(&buf);
            (p.hash, Some(p.quality))
        }
        Split::Dct16 => {
            let mut d = [[0f32; 16]; 16];
            for (row, chunk) in d.iter_mut().zip(v.chunks_exact(16)) {
                row.copy_from_slice(chunk);
            }
            (scanlab_pdq::hash_from_dct16(&d), None)
        }
    }
}

fn len_of(split: Split) -> usize {
    match split {
        Split::Luma64 => 64 * 64,
        Split::Dct16 => 16 * 16,
    }
}

/// S4's client half.
pub struct Client {
    split: Split,
}

impl Client {
    /// A client for the split the provider announces (`params.split`).
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        Ok(Client {
            split: crate::field(params, "split")?.parse()?,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "partial-hash"
    }
    fn scan_request(
        &mut self,
        image: &[u8],
        attachment: &AttachmentRef,
    ) -> Result<Option<Value>, ClientError> {
        let v = intermediate(image, self.split)?;
        Ok(Some(json!({
            "blob": attachment.blob,
            "split": self.split,
            "intermediate": b64(&to_bytes(&v)),
        })))
    }
}

/// S4's provider half.
pub struct Provider {
    matcher: Matcher,
    split: Split,
}

impl Provider {
    /// Finishes hashes from `split` intermediates and matches them.
    pub fn new(matcher: Matcher, split: Split) -> Provider {
        Provider { matcher, split }
    }

    fn scan_inner(&self, request: &Value) -> Result<ScanOutcome, SchemeError> {
        let split: Split = crate::field(request, "split")?.parse()?;
        if split != self.split {
            return Err(SchemeError::Malformed(format!(
                "this deployment splits at {:?}",
                self.split
            )));
        }
        let v = from_bytes(&b64_field(request, "intermediate")?, len_of(split))?;
        let (hash, quality) = finish(&v, split);
        let m = self.matcher.check(&hash);
        Ok(ScanOutcome {
            reply: disclose_reply(&m),
            derived: Some(json!({
                "blob": request["blob"],
                "hash": hash.to_string(),
                "quality": quality,
                "match": m,
            })),
        })
    }
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "partial-hash"
    }
    fn public_params(&self) -> Value {
        json!({ "radius": self.matcher.radius(), "split": self.split })
    }
    fn scan(&self, _ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ApiError> {
        Ok(self.scan_inner(request)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
                "../../../shared/pdq-reference/images/reg-test-input/labelme-subset/q0746.jpg",
            ),
        )
        .unwrap()
    }

    #[test]
    fn the_provider_finishes_exactly_the_devices_hash_at_both_splits() {
        let img = photo();
        let device = crate::pdq_of(&img).unwrap();
        for split in [Split::Luma64, Split::Dct16] {
            let v = intermediate(&img, split).unwrap();
            let wire = from_bytes(&to_bytes(&v), len_of(split)).unwrap();
            let (hash, quality) = finish(&wire, split);
            assert_eq!(hash, device.hash, "{split:?}");
            if split == Split::Luma64 {
                assert_eq!(quality, Some(device.quality));
            }
        }
    }

    #[test]
    fn malformed_intermediates_are_refused() {
        assert!(from_bytes(&[0u8; 12], 4).is_err());
        assert!(from_bytes(&f32::NAN.to_le_bytes(), 1).is_err());
        assert_eq!(from_bytes(&1.5f32.to_le_bytes(), 1).unwrap(), vec![1.5]);
    }
}
