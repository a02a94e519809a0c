//! `scanlab attack`, checked against Meta's PDQ as PyPI `pdqhash` computes it (in the
//! virtual environment of `scripts/te-venv.sh`): an evading copy really lies beyond the radius
//! of its original's hash, a colliding image really lies within it of its target, and
//! `pdqhash` gives each output exactly the hash scanlab reports.

mod common;

use common::{scanlab, shared};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn image(rel: &str) -> String {
    shared()
        .join("pdq-reference/images")
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

fn run(args: &[&str]) -> Vec<Value> {
    let o = scanlab(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The venv's python, with `pdqhash` and Pillow.
fn python() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/te-venv.sh");
    let o = Command::new("bash").arg(script).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
        .parent()
        .unwrap()
        .join("python")
}

/// `pdqhash`'s hashes of `paths`, as hex in ThreatExchange's bit order.
fn reference_hashes(paths: &[String]) -> Vec<String> {
    let code = [
        "import sys, numpy, pdqhash",
        "from PIL import Image",
        "for p in sys.argv[1:]:",
        "    bits, _ = pdqhash.compute(numpy.asarray(Image.open(p).convert('RGB')))",
        "    s = ''.join(str(int(b)) for b in bits)",
        "    print(''.join('%x' % int(s[i:i + 4], 2) for i in range(0, 256, 4)))",
    ]
    .join("\n");
    let o = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(paths)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn distance(a: &str, b: &str) -> u32 {
    let (a, b) = (hex::decode(a).unwrap(), hex::decode(b).unwrap());
    a.iter().zip(&b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

#[test]
fn evading_and_colliding_images_hold_under_meta_pdq_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let sources = [
        image("bridge-mods/aaa-orig.jpg"),
        image("reg-test-input/labelme-subset/q0746.jpg"),
    ];
    let target = image("reg-test-input/labelme-subset/q2821.jpg");
    let mut lines = Vec::new();
    for method in ["white", "black"] {
        let mut args = vec!["attack", "evade", "--method", method, "--out"];
        let sub = format!("{out}/{method}");
        args.push(&sub);
        args.extend(sources.iter().map(String::as_str));
        lines.extend(run(&args));
    }
    let sub = format!("{out}/collide");
    let mut args = vec![
        "attack",
        "collide",
        "--target-image",
        &target,
        "--out",
        &sub,
    ];
    args.extend(sources.iter().map(String::as_str));
    lines.extend(run(&args));
    assert_eq!(lines.len(), 6);

    let mut paths: Vec<String> = sources.to_vec();
    paths.push(target.clone());
    paths.extend(lines.iter().map(|l| l["out"].as_str().unwrap().to_string()));
    let meta = reference_hashes(&paths);
    let (orig, target_hash, outs) = (&meta[..2], &meta[2], &meta[3..]);
    for (i, (l, theirs)) in lines.iter().zip(outs).enumerate() {
        assert_eq!(l["success"], true, "{l}");
        assert_eq!(
            l["pdq"].as_str().unwrap(),
            theirs,
            "pdqhash agrees bit for bit: {l}"
        );
        let d = if l["attack"] == "collide" {
            let d = distance(theirs, target_hash);
            assert!(d <= 31, "collision at {d}: {l}");
            d
        } else {
            let d = distance(theirs, &orig[i % 2]);
            assert!(d > 31, "evasion at {d}: {l}");
            d
        };
        assert_eq!(l["distance"].as_u64().unwrap(), d as u64, "{l}");
    }
}

#[test]
fn the_black_box_attack_is_reproducible_under_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let src = image("bridge-mods/aaa-orig.jpg");
    let bytes = |seed: &str, sub: &str| {
        let out = dir.path().join(sub);
        let args = [
            "attack",
            "evade",
            "--method",
            "black",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
            &src,
        ];
        run(&args);
        std::fs::read(out.join("aaa-orig.evade.png")).unwrap()
    };
    assert_eq!(bytes("4", "a"), bytes("4", "b"));
    assert_ne!(bytes("4", "a"), bytes("5", "c"));
}

#[test]
fn a_bad_file_is_reported_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff not a jpeg").unwrap();
    let good = image("bridge-mods/aaa-orig.jpg");
    let out = dir.path().join("out");
    let o = scanlab(&[
        "attack",
        "evade",
        "--out",
        out.to_str().unwrap(),
        bad.to_str().unwrap(),
        &good,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("broken.jpg"));
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().count(), 1);
    assert!(out.join("aaa-orig.evade.png").exists());
}
