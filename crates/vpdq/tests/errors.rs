//! Untrusted videos: a corrupt file, a truncated one, one over each limit and one without a
//! video stream each give a typed error and no panic; bytes in memory hash as the file does.

use scanlab_vpdq::{Limits, Options, VpdqError, hash_bytes, hash_file};
use std::path::{Path, PathBuf};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vpdq-reference/videos/chair-19-sd-bar.mp4")
}

fn opts() -> Options {
    Options::new().with_seconds_per_hash(1.0).unwrap()
}

#[test]
fn bytes_in_memory_hash_as_the_file_does() {
    let bytes = std::fs::read(sample()).unwrap();
    let a = hash_file(&sample(), &opts(), &Limits::default()).unwrap();
    let b = hash_bytes(&bytes, &opts(), &Limits::default()).unwrap();
    assert_eq!(a, b);
    assert!(a.frames.len() > 10);
}

#[test]
fn corrupt_input_is_refused_with_a_typed_error() {
    // Random bytes, and the sample with its header overwritten.
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(matches!(
        hash_bytes(&noise, &opts(), &Limits::default()),
        Err(VpdqError::Open(_))
    ));
    let mut bytes = std::fs::read(sample()).unwrap();
    bytes[..4096].fill(0);
    assert!(hash_bytes(&bytes, &opts(), &Limits::default()).is_err());
    assert!(matches!(
        hash_bytes(&[], &opts(), &Limits::default()),
        Err(VpdqError::Open(_))
    ));
    // A text file and a missing file.
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "not a video at all\n").unwrap();
    assert!(hash_file(&txt, &opts(), &Limits::default()).is_err());
    assert!(matches!(
        hash_file(&dir.path().join("missing.mp4"), &opts(), &Limits::default()),
        Err(VpdqError::Io(_))
    ));
}

#[test]
fn a_truncated_video_is_an_error_at_every_cut() {
    let bytes = std::fs::read(sample()).unwrap();
    for frac in [0.1, 0.5, 0.9, 0.99] {
        let cut = &bytes[..(bytes.len() as f64 * frac) as usize];
        let e = hash_bytes(cut, &opts(), &Limits::default()).unwrap_err();
        assert!(matches!(e, VpdqError::Truncated { .. }), "{frac}: {e}");
    }
}

#[test]
fn each_limit_is_enforced() {
    let l = Limits::default();
    let bytes = std::fs::metadata(sample()).unwrap().len();
    let cases = [
        (
            Limits {
                max_bytes: bytes - 1,
                ..l
            },
            "bytes",
        ),
        (
            Limits {
                max_pixels: 1000,
                ..l
            },
            "pixels",
        ),
        (
            Limits {
                max_frames: 20,
                ..l
            },
            "frames",
        ),
        (
            Limits {
                max_seconds: 2.0,
                ..l
            },
            "seconds",
        ),
    ];
    for (limits, what) in cases {
        let e = hash_file(&sample(), &opts(), &limits).unwrap_err();
        let ok = match what {
            "bytes" => matches!(e, VpdqError::TooManyBytes { .. }),
            "pixels" => matches!(e, VpdqError::TooManyPixels { .. }),
            "frames" => matches!(e, VpdqError::TooManyFrames { limit: 20 }),
            _ => matches!(e, VpdqError::TooLong { .. }),
        };
        assert!(ok, "{what}: {e}");
        // Every error says what to do or what is wrong, in words.
        assert!(e.to_string().len() > 20);
    }
}

#[test]
fn invalid_options_cannot_be_built() {
    assert!(Options::new().with_seconds_per_hash(-1.0).is_err());
    assert!(Options::new().with_seconds_per_hash(f64::NAN).is_err());
    assert!(Options::new().with_size(4, 100).is_err());
    assert!(Options::new().with_size(100_000, 100).is_err());
    assert!(Options::new().with_size(5, 5).is_ok());
}

#[test]
fn a_file_without_video_is_no_video() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    let st = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "sine=frequency=440:duration=1"])
        .arg(&wav)
        .status()
        .expect("the ffmpeg program (scripts/setup.sh installs it)");
    assert!(st.success());
    assert!(matches!(
        hash_file(&wav, &opts(), &Limits::default()),
        Err(VpdqError::NoVideo)
    ));
}

#[test]
fn damaged_bytes_never_panic() {
    // Seeded damage anywhere in the file: the result may be frames or a typed error, never a
    // panic or a crash; and the damage must show (a canary that the bytes really changed what
    // was decoded), or the test would pass on any input.
    let bytes = std::fs::read(sample()).unwrap();
    let clean = hash_bytes(&bytes, &opts(), &Limits::default()).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut noticed = 0;
    for _ in 0..12 {
        let mut b = bytes.clone();
        let start = (next() % b.len() as u64) as usize;
        for byte in b.iter_mut().skip(start).take(64) {
            *byte = next() as u8;
        }
        match hash_bytes(&b, &opts(), &Limits::default()) {
            Ok(v) if v == clean => {}
            Ok(v) => {
                noticed += 1;
                assert!(v.frames.iter().all(|f| f.quality <= 100));
            }
            Err(e) => {
                noticed += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(noticed > 0, "no damage changed anything");
}

#[test]
fn a_still_image_reads_as_a_one_frame_video_and_says_so() {
    let jpeg = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/pdq-reference/images/reg-test-input/labelme-subset/q0003.jpg"),
    )
    .unwrap();
    let v = hash_bytes(&jpeg, &Options::new(), &Limits::default()).unwrap();
    assert_eq!(v.frames.len(), 1);
    assert!(v.is_still_image(), "{}", v.container);
    let mp4 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vpdq-reference/videos/test-padded-dimensions.mp4");
    let real = hash_file(&mp4, &Options::new(), &Limits::default()).unwrap();
    assert!(!real.is_still_image(), "{}", real.container);
    // Inside other bytes too (a stored zip entry is the JPEG verbatim after a header).
    let mut wrapped = b"PK\x03\x04 some header bytes".to_vec();
    wrapped.extend(&jpeg);
    let still = |bytes: &[u8]| {
        let v = hash_bytes(bytes, &Options::new(), &Limits::default()).unwrap();
        assert!(
            v.is_still_image(),
            "{} of {} frames",
            v.container,
            v.decoded
        );
    };
    still(&wrapped);
    // Two stored JPEGs back to back (a zip of two photos) are two frames, and still no video.
    wrapped.extend(b"PK\x03\x04 another header");
    wrapped.extend(&jpeg);
    still(&wrapped);
}
