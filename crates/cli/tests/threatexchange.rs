//! Interop with Meta's ThreatExchange command line (PyPI `threatexchange` 1.2.17), run here in
//! a virtual environment (`scripts/te-venv.sh`), in both directions: hashes, lists and
//! matches. The two tools must agree on every hash and every match distance.

mod common;

use common::{scanlab, shared};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn testdata(rel: &str) -> PathBuf {
    shared().join("pdq-reference/images").join(rel)
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {:?}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// ThreatExchange, with its state (`~/.threatexchange`) in `home`.
struct Te {
    exe: PathBuf,
    home: PathBuf,
}

impl Te {
    fn new(home: &Path) -> Te {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/te-venv.sh");
        let exe = ok(
            Command::new("bash").arg(script).output().unwrap(),
            "installing threatexchange",
        );
        Te {
            exe: PathBuf::from(exe.trim()),
            home: home.to_path_buf(),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let o = Command::new(&self.exe)
            .args(args)
            .env("HOME", &self.home)
            .output()
            .unwrap();
        ok(o, &format!("threatexchange {args:?}"))
    }
}

/// RGB photos, where both tools decode as Pillow's `convert('RGB')` does.
const PHOTOS: &[&str] = &[
    "bridge-mods/aaa-orig.jpg",
    "bridge-mods/blur-a-lot.jpg",
    "bridge-mods/shrink-a-lot.jpg",
    "bridge-mods/square-256x256.jpg",
    "reg-test-input/labelme-subset/q0746.jpg",
    "reg-test-input/labelme-subset/q2821.jpg",
    "misc-images/wee.jpg",
    "reg-test-input/pen-and-coaster.png",
];

#[test]
fn hashes_lists_and_matches_round_trip_with_threatexchange() {
    let dir = tempfile::tempdir().unwrap();
    let te = Te::new(dir.path());
    let path = |rel: &str| testdata(rel).to_str().unwrap().to_string();

    // Hashes: ThreatExchange's `hash photo` and scanlab's `--format threatexchange` print the
    // same line for every photo (both print none for a hash of quality below 50).
    let mut printed = 0;
    for rel in PHOTOS {
        let theirs = te.run(&["hash", "photo", &path(rel)]);
        let ours = ok(
            scanlab(&["hash", "--format", "threatexchange", &path(rel)]),
            rel,
        );
        assert_eq!(ours, theirs, "{rel}");
        printed += ours.starts_with("pdq ") as usize;
    }
    assert!(printed >= PHOTOS.len() - 1, "{printed} hashes printed");

    // Every test image, every Pillow mode among them: with `--compat threatexchange` scanlab
    // prints exactly ThreatExchange's lines (both leave out quality below 50, in order). The
    // reference mode differs from it, on the palette, 1-bit and CMYK files only.
    let mut all: Vec<String> = Vec::new();
    let mut stack = vec![testdata("")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                all.push(p.to_str().unwrap().to_string());
            }
        }
    }
    all.sort();
    assert!(all.len() >= 50, "{} test images", all.len());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let theirs = te.run(&[&["hash", "photo"][..], &refs].concat());
    let compat = ok(
        scanlab(
            &[
                &[
                    "hash",
                    "--format",
                    "threatexchange",
                    "--compat",
                    "threatexchange",
                ][..],
                &refs,
            ]
            .concat(),
        ),
        "hash --compat threatexchange",
    );
    assert_eq!(compat, theirs);
    // Palette GIFs, made with Pillow in ThreatExchange's environment.
    let python = te.exe.with_file_name("python");
    let gifs = [dir.path().join("p200.gif"), dir.path().join("web.gif")];
    let make = format!(
        "from PIL import Image\n\
         Image.open({a:?}).convert('P', palette=Image.ADAPTIVE, colors=200).save({g0:?})\n\
         Image.open({b:?}).convert('P').save({g1:?})\n",
        a = path(PHOTOS[0]),
        b = path(PHOTOS[4]),
        g0 = gifs[0].to_str().unwrap(),
        g1 = gifs[1].to_str().unwrap(),
    );
    ok(
        Command::new(&python).args(["-c", &make]).output().unwrap(),
        "making GIFs",
    );
    for g in &gifs {
        let g = g.to_str().unwrap();
        let theirs = te.run(&["hash", "photo", g]);
        let compat = ok(
            scanlab(&["hash", "--format", "te", "--compat", "threatexchange", g]),
            g,
        );
        assert_eq!(compat, theirs, "{g}");
    }
    // Canary: in reference mode exactly these files hash otherwise than ThreatExchange.
    let mut differing: Vec<String> = ["P.png", "1.png", "CMYK.jpg"]
        .iter()
        .map(|f| path(&format!("misc-images/modes/{f}")))
        .collect();
    differing.extend(gifs.iter().map(|g| g.to_str().unwrap().to_string()));
    for f in &differing {
        let theirs = te.run(&["hash", "photo", f]);
        let reference = ok(scanlab(&["hash", "--format", "threatexchange", f]), f);
        assert_ne!(reference, theirs, "{f}");
    }

    // scanlab → ThreatExchange: a list scanlab builds loads as a local-file collaboration.
    let listed = [PHOTOS[0], PHOTOS[4], PHOTOS[5]];
    let list = dir.path().join("list.txt");
    let mut args = vec![
        "list".to_string(),
        "build".into(),
        "--format".into(),
        "threatexchange".into(),
        "--out".into(),
        list.to_str().unwrap().into(),
    ];
    args.extend(listed.iter().map(|r| path(r)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(scanlab(&args), "list build");
    te.run(&[
        "config",
        "collab",
        "edit",
        "local_file",
        "--create",
        "--filename",
        list.to_str().unwrap(),
        "scanlab_list",
    ]);
    te.run(&["fetch"]);
    let summary = te.run(&["dataset"]);
    assert!(summary.contains("pdq: 3"), "{summary}");

    // Matches: for every photo, the same hit (or miss) at the same distance.
    let mut hits = 0;
    for rel in PHOTOS {
        let theirs = te.run(&["match", "photo", &path(rel)]);
        let theirs: Option<u32> = theirs
            .lines()
            .find(|l| l.contains("(scanlab_list)"))
            .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap());
        let o = scanlab(&["match", "--list", list.to_str().unwrap(), &path(rel)]);
        let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let ours = line["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["distance"].as_u64().unwrap() as u32)
            .min();
        assert_eq!(ours, theirs, "{rel}: scanlab {line}");
        hits += ours.is_some() as usize;
    }
    // Canary: the comparison saw hits (the listed photos and the bridge's edits) and misses.
    assert!((4..PHOTOS.len()).contains(&hits), "{hits} hits");

    // ThreatExchange → scanlab: its CSV export and its signal lines load as lists, with the
    // same hashes as the file it loaded.
    let want = ok(
        scanlab(&[
            "list",
            "export",
            "--format",
            "threatexchange",
            list.to_str().unwrap(),
        ]),
        "export",
    );
    let mut want: Vec<&str> = want.lines().collect();
    want.sort();
    let csv = dir.path().join("te.csv");
    std::fs::write(&csv, te.run(&["dataset", "-P", "--csv"])).unwrap();
    let lines = dir.path().join("te.txt");
    std::fs::write(&lines, te.run(&["dataset", "-P", "-S"])).unwrap();
    for f in [&csv, &lines] {
        let got = ok(
            scanlab(&[
                "list",
                "export",
                "--format",
                "threatexchange",
                f.to_str().unwrap(),
            ]),
            "reading ThreatExchange's export",
        );
        let mut got: Vec<&str> = got.lines().collect();
        got.sort();
        assert_eq!(got, want, "{}", f.display());
    }
    // And as queries: ThreatExchange's signal lines matched against scanlab's list.
    let o = scanlab(&[
        "match",
        "--list",
        list.to_str().unwrap(),
        "--hashes",
        lines.to_str().unwrap(),
    ]);
    let out = ok(o, "match --hashes");
    assert_eq!(out.matches("\"distance\":0").count(), 3, "{out}");
}
