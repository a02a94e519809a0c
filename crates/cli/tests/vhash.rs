//! `scanlab vhash`: Meta's text format as the library writes it, one file per video with
//! --out, and a batch that goes on past a corrupt and a truncated video, naming each.

mod common;

use common::scanlab;
use scanlab_vpdq::{Limits, Options, format, hash_file};
use std::path::PathBuf;

/// Meta's sample videos and hashes: the workspace's `../shared/vpdq-reference` (25 MB, kept
/// out of the repository), or `$SCANLAB_VPDQ_REFERENCE`.
fn vref() -> PathBuf {
    std::env::var_os("SCANLAB_VPDQ_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vpdq-reference")
        })
}

fn video(name: &str) -> String {
    vref()
        .join("videos")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn text_output_is_the_librarys_and_reads_back() {
    let v = video("chair-19-sd-bar.mp4");
    let o = scanlab(&["vhash", "--seconds-per-hash", "0", "--size", "128", &v]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let opts = Options::new().with_size(128, 128).unwrap();
    let lib = hash_file(v.as_ref(), &opts, &Limits::default()).unwrap();
    assert_eq!(text, format::to_text(&lib.frames));
    let back = format::from_text(&text).unwrap();
    assert_eq!(back.len(), 564);
    // The same frame numbers and timestamps as Meta's published 128×128 hashes.
    let published =
        std::fs::read_to_string(vref().join("hashes/chair-19-sd-bar-128x128.txt")).unwrap();
    let cols = |t: &str| -> Vec<(String, String)> {
        t.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[3].to_string())
            })
            .collect()
    };
    assert_eq!(cols(&text), cols(&published));
}

#[test]
fn a_batch_goes_on_past_bad_videos_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let good = video("test-padded-dimensions.mp4");
    let bytes = std::fs::read(&good).unwrap();
    // Cut short with its index at the front (the frames are missing) and at the end (the index
    // is missing).
    let chair = std::fs::read(video("chair-19-sd-bar.mp4")).unwrap();
    std::fs::write(dir.path().join("cut.mp4"), &chair[..chair.len() / 3]).unwrap();
    std::fs::write(dir.path().join("cut-end.mp4"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(dir.path().join("junk.mp4"), b"not a video").unwrap();
    std::fs::copy(&good, dir.path().join("good.mp4")).unwrap();
    let out = dir.path().join("hashes");
    let o = scanlab(&[
        "vhash",
        "--out",
        out.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cut.mp4") && err.contains("truncated"),
        "{err}"
    );
    assert!(
        err.contains("junk.mp4") && err.contains("not a video"),
        "{err}"
    );
    assert!(
        err.contains("cut-end.mp4: not a video") && err.contains("complete"),
        "{err}"
    );
    assert!(err.contains("3 of 4 videos failed"), "{err}");
    let written = std::fs::read_to_string(out.join("good.txt")).unwrap();
    // 5 s at 30 fps, one hash a second.
    assert_eq!(format::from_text(&written).unwrap().len(), 5);
    assert!(!out.join("cut.txt").exists());
    // Several videos to stdout need a format that holds several.
    let o = scanlab(&["vhash", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    // Over a limit: a clear error, no panic.
    let o = scanlab(&["vhash", "--max-frames", "10", &good]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("more than 10 frames"));
}
