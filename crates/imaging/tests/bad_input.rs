//! Hostile and broken input: every failure is a typed error, never a panic, and limits hold.

use image::{ImageEncoder, RgbImage};
use rand::{Rng, SeedableRng};
use scanlab_imaging::{DecodeOptions, ImageError, Limits, decode, decode_file};
use std::path::PathBuf;

fn photo() -> RgbImage {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/pdq-reference/images/reg-test-input/labelme-subset/q0746.jpg");
    decode_file(&p, &DecodeOptions::default()).unwrap()
}

/// The same pixels in every lossless format we read, plus a JPEG.
fn encodings(img: &RgbImage) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, fmt) in [
        ("png", image::ImageFormat::Png),
        ("bmp", image::ImageFormat::Bmp),
        ("tiff", image::ImageFormat::Tiff),
        ("pnm", image::ImageFormat::Pnm),
        ("webp", image::ImageFormat::WebP),
    ] {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).unwrap();
        out.push((name, buf.into_inner()));
    }
    let mut gif = Vec::new();
    image::codecs::gif::GifEncoder::new(&mut gif)
        .encode(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out.push(("gif", gif));
    let jpeg = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/pdq-reference/images/reg-test-input/labelme-subset/q0746.jpg"),
    )
    .unwrap();
    out.push(("jpeg", jpeg));
    out
}

#[test]
fn lossless_formats_give_the_same_pixels() {
    let img = photo();
    for (name, bytes) in encodings(&img) {
        let back =
            decode(&bytes, &DecodeOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back.dimensions(), img.dimensions(), "{name}");
        if name != "gif" && name != "jpeg" {
            // GIF quantises to 256 colours; the rest are lossless.
            assert_eq!(back.as_raw(), img.as_raw(), "{name}");
        }
    }
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let img = photo();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut errors = 0;
    for (name, bytes) in encodings(&img) {
        for cut in [
            0,
            1,
            2,
            3,
            8,
            16,
            64,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            let r = std::panic::catch_unwind(|| decode(&bytes[..cut], &DecodeOptions::default()));
            let r = r.unwrap_or_else(|_| panic!("{name} truncated at {cut} panicked"));
            errors += r.is_err() as usize;
        }
        for _ in 0..30 {
            let mut b = bytes.clone();
            for _ in 0..rng.random_range(1..20) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            let r = std::panic::catch_unwind(|| decode(&b, &DecodeOptions::default()));
            assert!(r.is_ok(), "{name} with flipped bytes panicked");
        }
    }
    assert!(
        errors >= 7 * 6,
        "most truncations are reported as errors ({errors})"
    );
}

#[test]
fn pixel_and_byte_limits_are_enforced_before_decoding() {
    let img = photo();
    let tight = DecodeOptions {
        limits: Limits {
            max_pixels: 1000,
            ..Limits::default()
        },
        exif_orient: false,
        ..Default::default()
    };
    for (name, bytes) in encodings(&img) {
        match decode(&bytes, &tight) {
            Err(ImageError::TooManyPixels {
                width: 256,
                height: 256,
                limit: 1000,
            }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    let small = DecodeOptions {
        limits: Limits {
            max_bytes: 10,
            ..Limits::default()
        },
        exif_orient: false,
        ..Default::default()
    };
    assert!(matches!(
        decode(&encodings(&img)[0].1, &small),
        Err(ImageError::TooManyBytes { .. })
    ));
    assert!(matches!(
        decode(b"hello world", &DecodeOptions::default()),
        Err(ImageError::UnknownFormat)
    ));
}

#[test]
fn a_decompression_bomb_header_is_refused() {
    // A valid PNG header declaring 100000 x 100000 pixels (10 GP), with no data behind it.
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
        .unwrap();
    // Patch IHDR width/height (bytes 16..24) and leave the CRC wrong: a decoder must stop at the
    // dimensions or at the CRC, never allocate 30 GB.
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let r = decode(&png, &DecodeOptions::default());
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn zero_sized_images_are_errors_not_panics() {
    // `scanlab hash` used to panic (exit 101) on these, ending a whole folder's batch.
    for pnm in [
        &b"P6\n0 5\n255\n"[..],
        b"P6\n5 0\n255\n",
        b"P5\n0 0\n255\n",
        b"P3\n0 1\n255\n",
    ] {
        match decode(pnm, &DecodeOptions::default()) {
            Err(ImageError::Corrupt { .. }) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(pnm)),
        }
    }
}

#[test]
fn a_stream_is_read_only_up_to_the_byte_limit() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/pdq-reference/images/reg-test-input/labelme-subset/q0746.jpg");
    let bytes = std::fs::read(&p).unwrap();
    let name = std::path::Path::new("<stdin>");
    let img = scanlab_imaging::decode_reader(name, &bytes[..], &DecodeOptions::default()).unwrap();
    assert_eq!(img, photo());
    // An endless stream stops at the limit with a typed error naming the stream.
    let small = DecodeOptions {
        limits: Limits {
            max_bytes: 1000,
            ..Limits::default()
        },
        ..Default::default()
    };
    let e = scanlab_imaging::decode_reader(name, std::io::repeat(0xFF), &small).unwrap_err();
    assert!(
        matches!(
            e.error,
            scanlab_imaging::decode::FileErrorKind::Image(ImageError::TooManyBytes {
                bytes: 1001,
                limit: 1000
            })
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("<stdin>:"), "{e}");
}
