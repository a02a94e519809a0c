//! The fast decoding path: off by default, reduces only large JPEG and WebP images, and stays
//! within a few bits of the exact hash. One test, because it flips the process-wide default,
//! which every other test of this binary would see.

use scanlab_imaging::{
    DecodeOptions, FastDecode, decode, decode_file, fast_decode_default, pdq_image,
    set_fast_decode_default,
};
use std::path::{Path, PathBuf};

fn reference(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/pdq-reference/images")
        .join(rel)
}

fn hash(img: &scanlab_imaging::RgbImage) -> scanlab_pdq::Hash256 {
    scanlab_pdq::Hasher::new().hash(&pdq_image(img)).hash
}

#[test]
fn fast_path_is_off_by_default_reduces_large_images_and_stays_close() {
    // Off by default: the options every caller gets decode exactly.
    assert_eq!(fast_decode_default(), None);
    assert_eq!(DecodeOptions::default().fast, None);

    let exact = DecodeOptions::default();
    let fast = DecodeOptions {
        fast: Some(FastDecode::default()),
        ..DecodeOptions::default()
    };
    let jpegs = [
        "reg-test-input/dih/bridge-1-original.jpg",
        "reg-test-input/exif-rotn/exif-rotn-1.jpg",
    ];
    for rel in jpegs {
        let path = reference(rel);
        let a = decode_file(&path, &exact).unwrap();
        let b = decode_file(&path, &fast).unwrap();
        let r = FastDecode::default().reduction(a.width(), a.height());
        assert!(r > 1, "{rel} is large enough to be reduced");
        assert_eq!(
            (b.width(), b.height()),
            (a.width().div_ceil(r), a.height().div_ceil(r)),
            "{rel}: decoded at 1/{r}"
        );
        let d = hash(&a).distance(&hash(&b));
        assert!(d <= 24, "{rel}: fast hash {d} bits from the exact one");
    }

    // A lossy WebP goes through libwebp's rescaler.
    let webp = reference("misc-images/modes/F.webp");
    let (a, b) = (
        decode_file(&webp, &exact).unwrap(),
        decode_file(&webp, &fast).unwrap(),
    );
    assert_eq!((b.width(), b.height()), (800, 502));
    let d = hash(&a).distance(&hash(&b));
    assert!(d <= 24, "WebP: fast hash {d} bits from the exact one");

    // A PNG has no shortcut: the exact pixels whatever the option.
    let png = std::fs::read(reference("misc-images/modes/L.png")).unwrap();
    assert_eq!(decode(&png, &exact).unwrap(), decode(&png, &fast).unwrap());

    // The process default (what `scanlab evaluate --fast-decode` sets) reaches Default, and
    // turns off again.
    set_fast_decode_default(Some(FastDecode::default()));
    assert_eq!(DecodeOptions::default().fast, Some(FastDecode::default()));
    let path = reference(jpegs[0]);
    let by_default = decode_file(&path, &DecodeOptions::default()).unwrap();
    assert_eq!(by_default, decode_file(&path, &fast).unwrap());
    set_fast_decode_default(None);
    assert_eq!(DecodeOptions::default().fast, None);
    assert_eq!(
        decode_file(&path, &DecodeOptions::default()).unwrap(),
        decode_file(&path, &exact).unwrap()
    );
}

#[test]
fn reduction_keeps_both_sides_at_least_min_side() {
    let f = FastDecode { min_side: 256 };
    assert_eq!(f.reduction(4000, 3000), 8);
    assert_eq!(f.reduction(2048, 2048), 8);
    assert_eq!(
        f.reduction(2041, 2041),
        8,
        "rounded up, as the decoders round"
    );
    assert_eq!(f.reduction(2040, 2040), 4);
    assert_eq!(f.reduction(640, 480), 1);
    assert_eq!(f.reduction(1024, 512), 2);
    assert_eq!(f.reduction(100, 100), 1);
    assert_eq!(FastDecode { min_side: 1 }.reduction(9, 9), 8);
}
