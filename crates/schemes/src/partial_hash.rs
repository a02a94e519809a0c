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

use crate::device_hash::{MatchReply, parse};
use crate::{Matcher, Scheme, SchemeError, SimInputs, Simulation, Split, b64, b64_field};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::Media;
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// The intermediate the client computes for a split point, as `f32`s in row order.
pub fn intermediate(image: &[u8], split: Split) -> Result<Vec<f32>, SchemeError> {
    let img = crate::decode_image(image)?;
    let luma = scanlab_pdq::Hasher::new()
        .luma64(&scanlab_imaging::pdq_image(&img))
        .ok_or(SchemeError::TooSmall)?;
    Ok(intermediate_of(&luma, split))
}

/// The intermediate at `split` of a 64×64 luminance (a video frame's, which vPDQ computed).
pub fn intermediate_of(luma: &[[f32; 64]; 64], split: Split) -> Vec<f32> {
    match split {
        Split::Luma64 => luma.iter().flatten().copied().collect(),
        Split::Dct16 => scanlab_pdq::dct16(luma).iter().flatten().copied().collect(),
    }
}

/// The largest magnitude an intermediate value may have: luminance is at most 255, and a
/// coefficient of the 16×16 DCT of 64×64 such values at most 255 · 4096 · (1/√32)² ≈ 32,640.
pub const MAX_INTERMEDIATE: f32 = 1e5;

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
    // Luminance is 0–255 and a 16×16 DCT of it stays within a few thousand; anything far
    // beyond is not an intermediate of any image, and is refused before it reaches the hash.
    if v.iter().any(|f| f.abs() > MAX_INTERMEDIATE) {
        return Err(SchemeError::Malformed(format!(
            "intermediate has values beyond ±{MAX_INTERMEDIATE}"
        )));
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

/// S4's descriptor.
pub struct PartialHash;

/// S4's configuration: the list, the radius, and the split point.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The hash list file.
    pub list: std::path::PathBuf,
    /// Match radius in bits.
    #[serde(default = "crate::matcher::default_radius")]
    pub radius: u32,
    /// Where PDQ is split between device and provider.
    #[serde(default)]
    pub split: Split,
}

/// What the client sends for each image: the intermediate at the split point.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScanRequest {
    /// The blob id.
    pub blob: String,
    /// The split point.
    pub split: Split,
    /// The intermediate, little-endian `f32`s, base64.
    pub intermediate: String,
}

/// The parameters clients download.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// The radius.
    pub radius: u32,
    /// The split point.
    pub split: Split,
    /// The committed list (see [`crate::device_hash::Evidence`]).
    #[serde(default)]
    pub list: Option<scanlab_hashlist::ListRoot>,
}

impl Scheme for PartialHash {
    fn code(&self) -> &'static str {
        "S4"
    }
    fn name(&self) -> &'static str {
        "partial-hash"
    }
    fn summary(&self) -> &'static str {
        "the device runs PDQ up to a split point and sends the intermediate; the provider finishes the hash and matches"
    }
    fn explanation(&self) -> &'static str {
        "Option (b) of the 2020 paper, partial hashing: the device runs PDQ only part of the way and sends the intermediate (a 64×64 luminance or 16×16 DCT coefficients); the provider finishes the hash and matches. Meant to keep the list and the hash function at the provider, it hands the provider a small thumbnail of every photo."
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        Ok(Arc::new(Provider::new(
            Matcher::new(crate::read_list(&c.list)?, c.radius)?,
            c.split,
        )))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client::from_params(params)?))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let m = Matcher::new(inputs.list.clone(), crate::DEFAULT_RADIUS)?;
        Ok(Simulation::provider_only(Arc::new(Provider::new(
            m,
            Split::default(),
        ))))
    }
}

/// S4's client half.
pub struct Client {
    split: Split,
    evidence: crate::device_hash::Evidence,
}

impl Client {
    /// A client for the split the provider announces (`params.split`).
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        let p: Params = serde_json::from_value(params.clone())
            .map_err(|e| SchemeError::Malformed(format!("scheme parameters: {e}")))?;
        Ok(Client {
            split: p.split,
            evidence: crate::device_hash::Evidence::from_params(params)?,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "partial-hash"
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        if !matches!(a.media, Media::Image | Media::Video) {
            return Err(SchemeError::Media(a.media).into());
        }
        crate::device_hash::per_hash_requests(a, |frame| {
            let v = match frame {
                Some(f) => intermediate_of(&f.luma64, self.split),
                None => intermediate(a.bytes, self.split)?,
            };
            Ok(json!(ScanRequest {
                blob: a.attachment.blob.clone(),
                split: self.split,
                intermediate: b64(&to_bytes(&v)),
            }))
        })
    }
    fn on_scan_reply(
        &mut self,
        _: &ClientCtx,
        a: &Outgoing,
        reply: &Value,
    ) -> Result<Option<String>, ClientError> {
        // The device has the image: it finishes the hash itself to check the evidence.
        crate::device_hash::per_hash_verdict(a, reply, |r, own| {
            crate::device_hash::verify_reply(r, own, &self.evidence)
        })
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

    fn scan_inner(&self, r: ScanRequest) -> Result<ScanOutcome, SchemeError> {
        if r.split != self.split {
            return Err(SchemeError::Malformed(format!(
                "this deployment splits at {:?}",
                self.split
            )));
        }
        let bytes = b64_field(&json!({ "i": r.intermediate }), "i")?;
        let v = from_bytes(&bytes, len_of(r.split))?;
        let (hash, quality) = finish(&v, r.split);
        let m = self.matcher.check(&hash);
        Ok(ScanOutcome {
            reply: json!(MatchReply::of(&m, &self.matcher)),
            derived: Some(json!({
                "blob": r.blob,
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
        json!(Params {
            radius: self.matcher.radius(),
            split: self.split,
            list: Some(self.matcher.list_root()),
        })
    }
    fn scan(&self, _ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        Ok(self.scan_inner(parse(request)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
                "../../testdata/pdq-reference/images/reg-test-input/labelme-subset/q0746.jpg",
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
        assert!(from_bytes(&2e38f32.to_le_bytes(), 1).is_err());
        assert_eq!(from_bytes(&1.5f32.to_le_bytes(), 1).unwrap(), vec![1.5]);
    }
}
