//! PDQ and the comparison hashes behind one trait, so the evaluation can run the same
//! experiment with each and show what is particular to PDQ and what is common to perceptual
//! hashing.
//!
//! The comparison hashes come from the maintained `image_hasher` crate, at their common 64-bit
//! sizes: **aHash** (mean of an 8×8 thumbnail), **dHash** (horizontal gradients of a 9×8
//! thumbnail) and **pHash** (the 8×8 low-frequency DCT of a thumbnail, thresholded at its median).

use crate::RgbImage;
use image_hasher::{HashAlg, HasherConfig};

/// A hash value as bytes; distance is the Hamming distance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct HashBits(pub Vec<u8>);

impl HashBits {
    /// Bits that differ. Hashes of different lengths are maximally distant.
    pub fn distance(&self, other: &HashBits) -> u32 {
        if self.0.len() != other.0.len() {
            return 8 * self.0.len().max(other.0.len()) as u32;
        }
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A perceptual hash function.
pub trait PerceptualHash: Send {
    /// Short name (`pdq`, `phash`, `dhash`, `ahash`).
    fn name(&self) -> &'static str;
    /// Length of the hash in bits.
    fn bits(&self) -> u32;
    /// The distance at or under which two hashes are conventionally "the same image" (PDQ: 31
    /// of 256, Meta's recommendation; the 64-bit hashes: 10, the common choice).
    fn default_radius(&self) -> u32;
    /// Hashes RGB pixels.
    fn hash(&mut self, img: &RgbImage) -> HashBits;
}

/// Meta's PDQ (this project's bit-exact implementation).
#[derive(Default)]
pub struct Pdq(scanlab_pdq::Hasher);

impl PerceptualHash for Pdq {
    fn name(&self) -> &'static str {
        "pdq"
    }
    fn bits(&self) -> u32 {
        256
    }
    fn default_radius(&self) -> u32 {
        31
    }
    fn hash(&mut self, img: &RgbImage) -> HashBits {
        HashBits(self.0.hash(&crate::pdq_image(img)).hash.to_bytes().to_vec())
    }
}

/// One of `image_hasher`'s algorithms at 64 bits.
pub struct Classic {
    name: &'static str,
    hasher: image_hasher::Hasher,
}

impl Classic {
    /// aHash: mean threshold of an 8×8 grey thumbnail.
    pub fn ahash() -> Self {
        Classic {
            name: "ahash",
            hasher: HasherConfig::new()
                .hash_size(8, 8)
                .hash_alg(HashAlg::Mean)
                .to_hasher(),
        }
    }
    /// dHash: signs of horizontal gradients.
    pub fn dhash() -> Self {
        Classic {
            name: "dhash",
            hasher: HasherConfig::new()
                .hash_size(8, 8)
                .hash_alg(HashAlg::Gradient)
                .to_hasher(),
        }
    }
    /// pHash: DCT of the thumbnail, thresholded at the median (with the mean, the DC term skews
    /// the threshold and unrelated photos land a few bits apart).
    pub fn phash() -> Self {
        Classic {
            name: "phash",
            hasher: HasherConfig::new()
                .hash_size(8, 8)
                .hash_alg(HashAlg::Median)
                .preproc_dct()
                .to_hasher(),
        }
    }
}

impl PerceptualHash for Classic {
    fn name(&self) -> &'static str {
        self.name
    }
    fn bits(&self) -> u32 {
        64
    }
    fn default_radius(&self) -> u32 {
        10
    }
    fn hash(&mut self, img: &RgbImage) -> HashBits {
        HashBits(self.hasher.hash_image(img).as_bytes().to_vec())
    }
}

/// All four, PDQ first.
pub fn all() -> Vec<Box<dyn PerceptualHash>> {
    vec![
        Box::new(Pdq::default()),
        Box::new(Classic::phash()),
        Box::new(Classic::dhash()),
        Box::new(Classic::ahash()),
    ]
}

/// A hash by name.
pub fn by_name(name: &str) -> Option<Box<dyn PerceptualHash>> {
    all().into_iter().find(|h| h.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edits::{Edit, EditKind};

    #[test]
    fn every_hash_is_stable_under_mild_resize_and_differs_across_images() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/pdq-reference/images/reg-test-input/labelme-subset");
        let load = |f: &str| crate::decode_file(&dir.join(f), &Default::default()).unwrap();
        let (a, b) = (load("q0746.jpg"), load("q2821.jpg"));
        let a2 = Edit {
            kind: EditKind::Resize,
            strength: 0.3,
        }
        .apply(&a, 0)
        .unwrap();
        for mut h in all() {
            let (ha, ha2, hb) = (h.hash(&a), h.hash(&a2), h.hash(&b));
            assert_eq!(ha.0.len() * 8, h.bits() as usize, "{}", h.name());
            assert!(
                ha.distance(&ha2) <= h.default_radius(),
                "{} resize moved {}",
                h.name(),
                ha.distance(&ha2)
            );
            assert!(
                ha.distance(&hb) > h.default_radius(),
                "{} distinct images at {}",
                h.name(),
                ha.distance(&hb)
            );
        }
        assert!(by_name("phash").is_some() && by_name("nope").is_none());
    }
}
