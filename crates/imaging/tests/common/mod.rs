//! Shared by the golden tests: reads a golden CSV and checks every row.

use image::ImageEncoder;
use scanlab_imaging::{DecodeOptions, decode_file, pdq_image};
use scanlab_pdq::{Hash256, Hasher, LumaMode};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The repository's `testdata/`, or `$SCANLAB_SHARED` (same layout).
pub fn shared() -> PathBuf {
    std::env::var_os("SCANLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"))
}

/// The outcome over one golden file.
pub struct Outcome {
    /// Rows whose decoded pixels equal Pillow's, all ten values asserted equal.
    pub exact: usize,
    /// Rows whose lossless PNG copy was hashed too, with the same result.
    pub png_copies: usize,
    /// Rows whose pixels differ: file and Hamming distance of the hash.
    pub pixel_mismatch: Vec<(String, u32)>,
}

/// Checks every row of `csv`; `locate` maps the `file` column to a path on disk. Panics on the
/// first value that differs where the pixels are identical.
pub fn check_golden(csv: &Path, locate: impl Fn(&str) -> PathBuf) -> Outcome {
    let text = std::fs::read_to_string(csv).expect("golden CSV present");
    let mut hasher = Hasher::new().with_luma_mode(LumaMode::NumpyF64);
    let mut out = Outcome {
        exact: 0,
        png_copies: 0,
        pixel_mismatch: Vec::new(),
    };
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let img =
            decode_file(&locate(f[0]), &DecodeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(img.width().to_string(), f[1], "{}: width", f[0]);
        assert_eq!(img.height().to_string(), f[2], "{}: height", f[0]);
        let sha = hex::encode(Sha256::digest(img.as_raw()));
        let pdq = hasher.hash(&pdq_image(&img));
        let want = Hash256::from_hex(f[4]).unwrap();
        if sha == f[3] {
            assert_eq!(pdq.hash, want, "{}: hash", f[0]);
            assert_eq!(pdq.quality.to_string(), f[5], "{}: quality", f[0]);
            let dih = hasher.hash_dihedral(&pdq_image(&img));
            for k in 0..8 {
                assert_eq!(dih.hashes[k].to_hex(), f[6 + k], "{}: dihedral {k}", f[0]);
            }
            out.exact += 1;
            // A lossless PNG copy of the same pixels must give the same ten values.
            let mut png = Vec::new();
            image::codecs::png::PngEncoder::new_with_quality(
                &mut png,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::NoFilter,
            )
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
            let copy = scanlab_imaging::decode::decode(&png, &DecodeOptions::default()).unwrap();
            assert_eq!(copy.as_raw(), img.as_raw(), "{}: PNG copy pixels", f[0]);
            assert_eq!(
                hasher.hash(&pdq_image(&copy)),
                pdq,
                "{}: PNG copy hash",
                f[0]
            );
            out.png_copies += 1;
        } else {
            out.pixel_mismatch
                .push((f[0].to_string(), pdq.hash.distance(&want)));
        }
    }
    out
}
