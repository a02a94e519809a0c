//! WebP pixels equal Pillow's, byte for byte.
//!
//! Pillow 13 (PyPI, in `.venv-pillow`: `scripts/pillow-venv.sh`) makes WebP copies of
//! dev-corpus photos, as a user's tools would: lossy at three qualities, lossless, with an
//! alpha channel (lossy and lossless), at odd sizes, and animated; then decodes them, and
//! ThreatExchange's reference WebPs, with `Image.open(f).convert('RGB')`. scanlab decodes the
//! same files, and every byte must be equal. The pure-Rust decoder behind `image` (what
//! scanlab used before libwebp) is compared too and its differing files are reported: the
//! reason for the change, not a requirement.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Photos of the dev corpus to copy (every k-th of the sorted corpus).
const PHOTOS: usize = 12;

const ORACLE: &str = r#"
import json, sys, os
from PIL import Image
job = json.load(sys.stdin)
out = job["out"]
files = []
for i, src in enumerate(job["photos"]):
    im = Image.open(src).convert("RGB")
    # Odd sizes exercise the chroma upsampler's edges; large photos are cut down to keep
    # the test short.
    w, h = im.size
    s = min(1.0, 1001 / max(w, h))
    im = im.resize((max(1, int(w * s)) | 1, max(1, int(h * s)) | 1), Image.BILINEAR)
    stem = os.path.join(out, f"p{i:02d}")
    for q in (50, 80, 95):
        im.save(f"{stem}-q{q}.webp", quality=q)
        files.append(f"{stem}-q{q}.webp")
    im.save(f"{stem}-lossless.webp", lossless=True)
    files.append(f"{stem}-lossless.webp")
    a = im.convert("RGBA")
    alpha = Image.linear_gradient("L").resize(im.size)
    a.putalpha(alpha)
    a.save(f"{stem}-alpha.webp", quality=80)
    a.save(f"{stem}-alpha-lossless.webp", lossless=True, exact=True)
    files += [f"{stem}-alpha.webp", f"{stem}-alpha-lossless.webp"]
    if i < 3:
        other = im.transpose(Image.FLIP_LEFT_RIGHT)
        im.save(f"{stem}-anim.webp", save_all=True, append_images=[other], duration=100, quality=80)
        files.append(f"{stem}-anim.webp")
files += job["given"]
for f in files:
    with Image.open(f) as im:
        rgb = im.convert("RGB")
        with open(os.path.join(out, os.path.basename(f) + ".rgb"), "wb") as o:
            o.write(rgb.tobytes())
        print(json.dumps({"file": f, "width": rgb.width, "height": rgb.height}))
"#;

fn python() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pillow-venv.sh");
    let o = Command::new("bash").arg(script).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
}

/// The first byte at which two buffers differ (or where one ends).
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

#[test]
fn webp_pixels_equal_pillows_on_lossy_lossless_alpha_and_animated_files() {
    let corpus = scanlab_corpus::ensure(&scanlab_corpus::default_cache_dir(), &mut |_| {})
        .expect("the dev corpus");
    let mut paths = corpus.paths();
    paths.sort();
    let step = (paths.len() / PHOTOS).max(1);
    let photos: Vec<String> = paths
        .iter()
        .step_by(step)
        .take(PHOTOS)
        .map(|p| p.display().to_string())
        .collect();
    let given: Vec<String> =
        std::fs::read_dir(common::shared().join("pdq-reference/images/misc-images/modes"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "webp"))
            .map(|p| p.display().to_string())
            .collect();
    assert_eq!(given.len(), 5, "ThreatExchange's reference WebPs");
    let out = std::env::temp_dir().join(format!("scanlab-webp-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut child = Command::new(python())
        .arg("-c")
        .arg(ORACLE)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(
        child.stdin.take().unwrap(),
        &serde_json::json!({ "photos": photos, "given": given, "out": out }),
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "the Pillow oracle failed");
    let mut checked = 0;
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let mut image_rs_differs = Vec::new();
    for line in String::from_utf8(o.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = PathBuf::from(v["file"].as_str().unwrap());
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let pillow = std::fs::read(out.join(format!("{name}.rgb"))).unwrap();
        let ours = scanlab_imaging::decode_file(&file, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (ours.width() as u64, ours.height() as u64),
            (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()),
            "{name}"
        );
        if let Some(i) = first_difference(ours.as_raw(), &pillow) {
            panic!(
                "{name}: pixels differ from Pillow's at byte {i} of {}",
                pillow.len()
            );
        }
        checked += 1;
        let kind = name.split_once('-').map_or("reference", |(_, k)| k);
        *kinds
            .entry(kind.trim_end_matches(".webp").to_string())
            .or_default() += 1;
        if let Ok(img) = image::open(&file)
            && first_difference(img.to_rgb8().as_raw(), &pillow).is_some()
        {
            image_rs_differs.push(name);
        }
    }
    eprintln!(
        "{checked} WebP files equal Pillow's ({kinds:?}); the image crate's decoder differs on {}: {:?}",
        image_rs_differs.len(),
        image_rs_differs
    );
    assert_eq!(checked, PHOTOS * 6 + 3 + 5);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_comparison_catches_one_changed_byte() {
    let a = vec![7u8; 300];
    let mut b = a.clone();
    assert_eq!(first_difference(&a, &b), None);
    b[123] ^= 1;
    assert_eq!(first_difference(&a, &b), Some(123));
    assert_eq!(first_difference(&a, &a[..299]), Some(299));
}
