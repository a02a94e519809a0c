//! Bit-exactness against Meta's C++ PDQ core on ThreatExchange's own test images.
//!
//! `shared/golden/pdq-reference.csv` gives, per image, the SHA-256 of the RGB bytes Pillow
//! decoded and the ten values Meta's code computed on them. Wherever our decoder yields the same
//! bytes, all ten must be equal; elsewhere the Hamming distance is reported.

use scanlab_imaging::{DecodeOptions, decode_file, pdq_image};
use scanlab_pdq::{Hash256, Hasher, LumaMode};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("SCANLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

#[test]
fn pdq_reference_images_are_bit_exact() {
    let root = shared();
    let csv = std::fs::read_to_string(root.join("golden/pdq-reference.csv")).expect("shared/golden present");
    let mut hasher = Hasher::new().with_luma_mode(LumaMode::NumpyF64);
    let (mut exact, mut pixel_mismatch) = (0, Vec::new());
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let path = root.join("pdq-reference").join(f[0]);
        let img = decode_file(&path, &DecodeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((img.width().to_string(), img.height().to_string()), (f[1].to_string(), f[2].to_string()), "{}", f[0]);
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
            exact += 1;
        } else {
            pixel_mismatch.push((f[0].to_string(), pdq.hash.distance(&want)));
        }
    }
    eprintln!("pdq-reference: {exact} rows with identical pixels, all ten values exact");
    for (f, d) in &pixel_mismatch {
        eprintln!("  decoded pixels differ from Pillow's: {f}: Hamming distance {d}");
    }
    // Every JPEG and PNG row must decode to Pillow's exact bytes; only WebP may differ.
    assert!(pixel_mismatch.iter().all(|(f, _)| f.ends_with(".webp")), "{pixel_mismatch:?}");
    assert!(pixel_mismatch.iter().all(|(_, d)| *d <= 16), "{pixel_mismatch:?}");
}
