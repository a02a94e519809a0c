//! Every image decoder (exact, and the fast path) on arbitrary bytes, then PDQ on whatever decodes: a typed error or a
//! hash, never a panic, a hang or an allocation beyond the limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanlab_imaging::{Compat, DecodeOptions, FastDecode, Limits, decode, pdq_image};

fuzz_target!(|data: &[u8]| {
    let opts = DecodeOptions {
        limits: Limits {
            max_pixels: 1_000_000,
            max_bytes: 8 << 20,
        },
        exif_orient: data.first().is_some_and(|b| b & 1 == 1),
        compat: if data.first().is_some_and(|b| b & 2 == 2) {
            Compat::ThreatExchange
        } else {
            Compat::Reference
        },
        // The fast path too, reducing even small images (its JPEG rewriting among them).
        fast: data
            .first()
            .is_some_and(|b| b & 4 == 4)
            .then_some(FastDecode { min_side: 8 }),
    };
    if let Ok(img) = decode(data, &opts) {
        let _ = scanlab_pdq::Hasher::new().hash(&pdq_image(&img));
    }
});
