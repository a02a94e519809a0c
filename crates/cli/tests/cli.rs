//! Black-box tests of the `scanlab` binary: output formats, exit codes, error messages.

mod common;

use common::{assert_exit, scanlab, scanlab_with_stdin, shared, stdout};
use std::process::Command;

/// Golden row for a pdq-reference file: (hash, quality, 8 dihedral).
fn golden(file: &str) -> (String, String, Vec<String>) {
    let csv = std::fs::read_to_string(shared().join("golden/pdq-reference.csv")).unwrap();
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("{file},")))
        .expect("row");
    let f: Vec<&str> = line.split(',').collect();
    (
        f[4].into(),
        f[5].into(),
        f[6..14].iter().map(|s| s.to_string()).collect(),
    )
}

#[test]
fn csv_lines_are_hash_quality_path_like_meta() {
    let rel = "images/misc-images/wee.jpg";
    let path = shared().join("pdq-reference").join(rel);
    let o = scanlab(&["hash", path.to_str().unwrap()]);
    assert!(o.status.success());
    let (hash, quality, _) = golden(rel);
    assert_eq!(stdout(&o), format!("{hash},{quality},{}\n", path.display()));
}

#[test]
fn json_with_dihedral_and_folder_recursion() {
    let dir = shared().join("pdq-reference/images/reg-test-input/dih");
    let o = scanlab(&[
        "hash",
        "--format",
        "json",
        "--dihedral",
        "--threads",
        "2",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        8,
        "the 8 dih images, recursively, in sorted order"
    );
    for v in &lines {
        let path = v["path"].as_str().unwrap();
        let rel = &path[path.find("images/").unwrap()..];
        let (hash, quality, dih) = golden(rel);
        assert_eq!(v["pdq"], hash);
        assert_eq!(v["quality"].to_string(), quality);
        let got: Vec<String> = v["dihedral"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, dih);
    }
    assert!(
        lines[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("bridge-1-original.jpg")
    );
}

#[test]
fn a_bad_file_is_named_the_rest_still_hashed_and_the_exit_code_is_2() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.jpg");
    let good = shared().join("pdq-reference/images/misc-images/wee.jpg");
    // A truncated JPEG: the first 500 bytes of a real one.
    std::fs::write(&bad, &std::fs::read(&good).unwrap()[..500]).unwrap();
    let o = scanlab(&["hash", bad.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken.jpg"), "{err}");
    assert_eq!(
        stdout(&o).lines().count(),
        1,
        "the good file is still hashed"
    );
}

#[test]
fn pixel_limit_gives_a_clear_error() {
    let good = shared().join("pdq-reference/images/misc-images/wee.jpg");
    let o = scanlab(&["hash", "--max-pixels", "100", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("34x42") && err.contains("limit of 100 pixels"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    let o = scanlab(&[
        "edit",
        "--edit",
        "sepia:1",
        "--out",
        "/nonexistent",
        "x.jpg",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("known edits"));
    let o = scanlab(&["hash"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn edit_writes_one_copy_per_edit_and_a_mild_edit_stays_a_match() {
    let tmp = tempfile::tempdir().unwrap();
    let src = shared().join("pdq-reference/images/bridge-mods/aaa-orig.jpg");
    let o = scanlab(&[
        "edit",
        "--edit",
        "jpeg:0.5",
        "--edit",
        "resize:0.5",
        "--seed",
        "3",
        "--out",
        tmp.path().to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = tmp.path().join("aaa-orig.jpeg-0.5.png");
    let b = tmp.path().join("aaa-orig.resize-0.5.png");
    assert!(a.exists() && b.exists());
    let o = scanlab(&[
        "hash",
        src.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let hashes: Vec<scanlab_pdq::Hash256> = stdout(&o)
        .lines()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(hashes[0].distance(&hashes[1]) <= 31);
    assert!(hashes[0].distance(&hashes[2]) <= 31);
}

#[test]
fn list_build_then_match_images_and_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("known.csv");
    let known = shared().join("pdq-reference/images/bridge-mods/aaa-orig.jpg");
    let o = scanlab(&[
        "list",
        "build",
        "--out",
        list.to_str().unwrap(),
        "--label",
        "known",
        known.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Every edited copy of the listed photo matches; an unrelated photo does not.
    let mods = shared().join("pdq-reference/images/bridge-mods");
    let o = scanlab(&[
        "match",
        "--list",
        list.to_str().unwrap(),
        mods.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    assert!(
        lines
            .iter()
            .all(|l| l["matches"].as_array().unwrap().len() == 1),
        "{lines:?}"
    );
    let other = shared().join("pdq-reference/images/misc-images/wee.jpg");
    let o = scanlab(&[
        "match",
        "--list",
        list.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "no match is a clean negative");
    // --hashes reads hex lines; a plain hex file is a valid list too.
    let hexes = tmp.path().join("q.txt");
    std::fs::write(
        &hexes,
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22\n",
    )
    .unwrap();
    let o = scanlab(&[
        "match",
        "--list",
        hexes.to_str().unwrap(),
        "--hashes",
        hexes.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("\"distance\":0"));
}

#[test]
fn a_malformed_list_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("bad.csv");
    std::fs::write(
        &list,
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22\nnot-a-hash\n",
    )
    .unwrap();
    let o = scanlab(&[
        "match",
        "--list",
        list.to_str().unwrap(),
        "--hashes",
        list.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn auditable_list_add_prove_verify_and_a_tampered_proof_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let listed = shared().join("pdq-reference/images/reg-test-input/labelme-subset");
    let o = scanlab(&[
        "list",
        "add",
        "--log",
        log.to_str().unwrap(),
        listed.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let added: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(added["head"]["size"], 7);
    let key = added["operator_key"].as_str().unwrap().to_string();
    // One organisation alone cannot admit a hash (k = 2 jurisdictions).
    let other = shared().join("pdq-reference/images/misc-images/wee.jpg");
    let o = scanlab(&[
        "list",
        "add",
        "--log",
        log.to_str().unwrap(),
        "--vouch",
        "standin-us",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs 2"));
    let policy = log.join("policy.json");
    for (img, want) in [
        (listed.join("q0746.jpg"), "listed"),
        (other.clone(), "not listed"),
    ] {
        let o = scanlab(&[
            "list",
            "prove",
            "--log",
            log.to_str().unwrap(),
            img.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        let proof = tmp.path().join("proof.json");
        std::fs::write(&proof, &o.stdout).unwrap();
        let o = scanlab(&[
            "list",
            "verify",
            "--operator-key",
            &key,
            "--policy",
            policy.to_str().unwrap(),
            proof.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains(&format!(" {want} ")), "{}", stdout(&o));
        // Changing the head's size breaks the operator's signature.
        let tampered = String::from_utf8(std::fs::read(&proof).unwrap())
            .unwrap()
            .replace("\"size\": 7", "\"size\": 8");
        std::fs::write(&proof, tampered).unwrap();
        let o = scanlab(&[
            "list",
            "verify",
            "--operator-key",
            &key,
            "--policy",
            policy.to_str().unwrap(),
            proof.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1));
    }
}

#[test]
fn a_zero_sized_image_in_a_folder_is_an_error_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let good = shared().join("pdq-reference/images/misc-images/wee.jpg");
    std::fs::copy(&good, dir.path().join("a.jpg")).unwrap();
    std::fs::write(dir.path().join("b.pnm"), b"P6\n0 7\n255\n").unwrap();
    std::fs::copy(&good, dir.path().join("c.jpg")).unwrap();
    let o = scanlab(&["hash", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "not 101: no panic");
    assert_eq!(stdout(&o).lines().count(), 2, "both good files hashed");
    assert!(String::from_utf8_lossy(&o.stderr).contains("b.pnm"));
}

#[test]
fn a_failed_list_build_leaves_the_old_list_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("list.csv");
    std::fs::write(&out, "keep me\n").unwrap();
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"not an image").unwrap();
    let o = scanlab(&[
        "list",
        "build",
        "--out",
        out.to_str().unwrap(),
        junk.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
}

#[test]
fn fp_reads_what_hash_writes_and_names_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let images = shared().join("pdq-reference/images");
    for format in ["csv", "json"] {
        let o = scanlab(&["hash", "--format", format, images.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let file = dir.path().join(format!("h.{format}"));
        std::fs::write(&file, &o.stdout).unwrap();
        let n = stdout(&o).lines().count() as u64;
        let o = scanlab(&["fp", "--hashes", file.to_str().unwrap(), "--radius", "31"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["pairs"].as_u64().unwrap(), n * (n - 1) / 2);
        assert_eq!(v["radius"], 31);
        let ci = v["empirical_ci"].as_array().unwrap();
        assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap());
        assert!(v["projection"].as_array().unwrap().len() == 2);
        assert!(v["command"].as_str().unwrap().contains("fp --hashes"));
        assert!(v["limits"].as_str().unwrap().contains("pairs can show"));
    }
    // A bad third line is named.
    let bad = dir.path().join("bad.csv");
    let good = "f".repeat(64);
    std::fs::write(
        &bad,
        format!("{good},100,a\n{good},100,b\nnot-a-hash,1,c\n"),
    )
    .unwrap();
    let o = scanlab(&["fp", "--hashes", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("bad.csv:3"), "{e}");
}

#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    // `scanlab corpus list | head -1` used to panic (exit 101): it printed with `println!`.
    // Both outputs are larger than a pipe's buffer (checked first), so the writer meets the
    // closed pipe.
    use std::io::{BufRead, BufReader};
    for args in [&["corpus", "list"][..], &["completions", "bash"][..]] {
        let whole = scanlab(args);
        assert!(whole.status.success());
        assert!(
            whole.stdout.len() > 70_000,
            "{args:?}: {}",
            whole.stdout.len()
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_scanlab"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reading end is closed here.
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!first.is_empty());
        assert!(o.status.success(), "{args:?}: {:?} {err}", o.status);
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn dash_is_stdin_and_stdout_and_files_from_reads_names() {
    let dir = tempfile::tempdir().unwrap();
    let img = shared().join("pdq-reference/images/misc-images/wee.jpg");
    let other = shared().join("pdq-reference/images/bridge-mods/aaa-orig.jpg");
    // `--out -` writes the list to stdout and no file named `-`.
    let o = Command::new(env!("CARGO_BIN_EXE_scanlab"))
        .current_dir(dir.path())
        .args(["list", "build", "--out", "-", img.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = stdout(&o);
    assert!(csv.starts_with("pdq,"), "{csv}");
    assert!(!dir.path().join("-").exists());
    // The list read back from stdin.
    let o = scanlab_with_stdin(
        &["list", "export", "-", "--format", "jsonl"],
        csv.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o).lines().count(), 1);
    // Names from stdin, one per line, as `find | scanlab hash --files-from -`.
    let names = format!("{}\r\n\n{}\n", img.display(), other.display());
    let o = scanlab_with_stdin(&["hash", "--files-from", "-"], names.as_bytes());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with("wee.jpg") && lines[1].ends_with("aaa-orig.jpg"));
    // An image on stdin.
    let from_file = stdout(&scanlab(&["hash", img.to_str().unwrap()]));
    let o = scanlab_with_stdin(&["hash", "-"], &std::fs::read(&img).unwrap());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        stdout(&o).split(',').next(),
        from_file.split(',').next(),
        "{}",
        stdout(&o)
    );
    // Matching with the list on stdin.
    let o = scanlab_with_stdin(
        &["match", "--list", "-", img.to_str().unwrap()],
        csv.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn quiet_silences_notes_but_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let img = shared().join("pdq-reference/images/misc-images/wee.jpg");
    let out = dir.path().join("l.csv");
    let args = [
        "list",
        "build",
        "--out",
        out.to_str().unwrap(),
        img.to_str().unwrap(),
    ];
    let loud = scanlab(&args);
    assert!(String::from_utf8_lossy(&loud.stderr).contains("wrote 1 entries"));
    let quiet = scanlab(&[&["--quiet"][..], &args].concat());
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    let missing = dir.path().join("missing.jpg");
    let o = scanlab(&["-q", "hash", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.jpg"));
}

#[test]
fn help_has_examples_completions_and_manual_pages() {
    for cmd in ["hash", "match", "evaluate", "fp", "completions", "man"] {
        let o = scanlab(&[cmd, "--help"]);
        assert!(
            stdout(&o).contains("Examples:\n  scanlab"),
            "{cmd}: {}",
            stdout(&o)
        );
    }
    let o = scanlab(&["completions", "bash"]);
    assert!(o.status.success() && stdout(&o).contains("scanlab__subcmd__hash"));
    let o = scanlab(&["completions", "zsh"]);
    assert!(o.status.success() && stdout(&o).contains("#compdef scanlab"));
    let o = scanlab(&["man"]);
    assert!(stdout(&o).starts_with(".ie") || stdout(&o).contains(".TH scanlab"));
    let dir = tempfile::tempdir().unwrap();
    let o = scanlab(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(o.status.success());
    let page = std::fs::read_to_string(dir.path().join("scanlab-hash.1")).unwrap();
    assert!(page.contains(".TH scanlab-hash"), "{page}");
    // No help text names a command that does not exist.
    let o = scanlab(&["list", "verify", "--help"]);
    assert!(!stdout(&o).contains("list head"), "{}", stdout(&o));
}

#[test]
fn format_names_agree_across_commands() {
    let img = shared().join("pdq-reference/images/misc-images/wee.jpg");
    let img = img.to_str().unwrap();
    let jsonl = scanlab(&["hash", "--format", "jsonl", img]);
    assert!(
        jsonl.status.success(),
        "{}",
        String::from_utf8_lossy(&jsonl.stderr)
    );
    // The first name of the option still works, and means the same.
    let json = scanlab(&["hash", "--format", "json", img]);
    assert_eq!(stdout(&jsonl), stdout(&json));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("l.jsonl");
    let o = scanlab(&[
        "list",
        "build",
        "--format",
        "jsonl",
        "--out",
        out.to_str().unwrap(),
        img,
    ]);
    assert!(o.status.success());
}

#[test]
fn low_quality_images_are_left_out_of_lists_and_not_matched() {
    let dir = tempfile::tempdir().unwrap();
    // A flat grey image: PDQ quality 0, a hash that says nothing about the image.
    let flat = dir.path().join("flat.pgm");
    let mut pgm = b"P5\n64 64\n255\n".to_vec();
    pgm.extend(std::iter::repeat_n(128u8, 64 * 64));
    std::fs::write(&flat, pgm).unwrap();
    let good = shared().join("pdq-reference/images/bridge-mods/aaa-orig.jpg");
    let (flat, good) = (flat.to_str().unwrap(), good.to_str().unwrap());
    let out = dir.path().join("l.csv");
    let o = scanlab(&["list", "build", "--out", out.to_str().unwrap(), flat, good]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("flat.pgm: quality 0 is below --min-quality 50"),
        "{err}"
    );
    assert!(err.contains("1 images below quality 50 left out"), "{err}");
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(
        csv.starts_with("pdq,id,label,vouched_by,added,quality\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 2, "{csv}");
    // Kept on request, with its quality in the list.
    let all = dir.path().join("all.csv");
    let o = scanlab(&[
        "list",
        "build",
        "--min-quality",
        "0",
        "--out",
        all.to_str().unwrap(),
        flat,
        good,
    ]);
    assert!(o.status.success());
    let csv = std::fs::read_to_string(&all).unwrap();
    assert!(csv.lines().nth(1).unwrap().ends_with(",0"), "{csv}");
    // Matching: the low-quality list entry is left out, and a low-quality query says why it
    // was not matched.
    let o = scanlab(&["match", "--list", all.to_str().unwrap(), flat]);
    assert_exit(&o, 1);
    let line: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(line["quality"], 0);
    assert!(
        line["skipped"]
            .as_str()
            .unwrap()
            .contains("below --min-quality 50")
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 of 2 list entries"));
    let o = scanlab(&[
        "match",
        "--min-quality",
        "0",
        "--list",
        all.to_str().unwrap(),
        flat,
    ]);
    assert_eq!(o.status.code(), Some(0));
    // The same verdict when the query comes as `scanlab hash` output (its quality column).
    let hashed = scanlab(&["hash", flat]).stdout;
    let o = scanlab_with_stdin(
        &["match", "--list", all.to_str().unwrap(), "--hashes", "-"],
        &hashed,
    );
    assert_exit(&o, 1);
    assert!(stdout(&o).contains("\"skipped\""), "{}", stdout(&o));
}

#[test]
fn threatexchange_signal_lines_load_as_lists_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let img = shared().join("pdq-reference/images/bridge-mods/aaa-orig.jpg");
    let o = scanlab(&["hash", img.to_str().unwrap()]);
    let hex = stdout(&o).split(',').next().unwrap().to_string();
    // What `threatexchange hash photo` and `threatexchange dataset` print.
    let te = dir.path().join("te.txt");
    std::fs::write(&te, format!("pdq {hex}\n")).unwrap();
    let o = scanlab(&[
        "match",
        "--list",
        te.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    let o = scanlab(&[
        "match",
        "--list",
        te.to_str().unwrap(),
        "--hashes",
        te.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("\"distance\":0"));
    // Its CSV export as queries: the PDQ rows only (CRLF, as it writes them).
    let csv = dir.path().join("te.csv");
    std::fs::write(
        &csv,
        format!(
            "signal_type,signal_str,collab,category,tags\r\nraw_text,hello,c,SEED,\r\n\
             pdq,{hex},c,SEED,\r\n"
        ),
    )
    .unwrap();
    let o = scanlab(&[
        "match",
        "--list",
        te.to_str().unwrap(),
        "--hashes",
        csv.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    // What `scanlab hash` writes for a path with a comma and a line break reads back.
    let odd = dir.path().join("a,\nb.jpg");
    std::fs::copy(&img, &odd).unwrap();
    let h = dir.path().join("h.csv");
    std::fs::write(
        &h,
        scanlab(&["hash", odd.to_str().unwrap(), img.to_str().unwrap()]).stdout,
    )
    .unwrap();
    let o = scanlab(&[
        "match",
        "--list",
        te.to_str().unwrap(),
        "--hashes",
        h.to_str().unwrap(),
    ]);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn hash_csv_quotes_a_path_with_a_comma() {
    let dir = tempfile::tempdir().unwrap();
    let src = shared().join("pdq-reference/images/misc-images/wee.jpg");
    let odd = dir.path().join("cat, dog.jpg");
    std::fs::copy(&src, &odd).unwrap();
    let o = scanlab(&["hash", odd.to_str().unwrap()]);
    assert!(o.status.success());
    let line = stdout(&o);
    assert!(
        line.trim_end().ends_with(&format!("\"{}\"", odd.display())),
        "{line}"
    );
    // And an ordinary path is printed as Meta's hasher prints it, unquoted.
    let o = scanlab(&["hash", src.to_str().unwrap()]);
    assert!(
        stdout(&o)
            .trim_end()
            .ends_with(&format!(",{}", src.display()))
    );
}

#[test]
fn a_label_with_a_comma_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let img = shared().join("pdq-reference/images/bridge-mods/aaa-orig.jpg");
    let out = dir.path().join("l.csv");
    let o = scanlab(&[
        "list",
        "build",
        "--label",
        "cat, dog",
        "--out",
        out.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    // With a byte-order mark and CRLF line ends, as a spreadsheet saves it.
    let csv = std::fs::read_to_string(&out).unwrap();
    let crlf = dir.path().join("crlf.csv");
    std::fs::write(&crlf, format!("\u{feff}{}", csv.replace('\n', "\r\n"))).unwrap();
    for f in [&out, &crlf] {
        let o = scanlab(&["list", "export", "--format", "jsonl", f.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let e: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(e["label"], "cat, dog");
        assert_eq!(e["vouched_by"], serde_json::json!([]));
    }
}

#[test]
fn a_binary_list_matches_the_same_with_its_saved_index_and_without() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("known.csv");
    let bin = tmp.path().join("known.bin");
    let dir = shared().join("pdq-reference/images/reg-test-input/dih");
    let o = scanlab(&[
        "list",
        "build",
        "--out",
        csv.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = scanlab(&["list", "export", "--format", "bin", csv.to_str().unwrap()]);
    std::fs::write(&bin, &o.stdout).unwrap();
    let mods = shared().join("pdq-reference/images/bridge-mods");
    let run = |extra: &[&str]| {
        let mut args = vec!["match", "--list", bin.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(mods.to_str().unwrap());
        let o = scanlab(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        stdout(&o)
    };
    let built = run(&[]);
    // `list index` writes LIST.mih beside the list and says what it built.
    let o = scanlab(&["list", "index", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["hashes"], 8);
    let mih = tmp.path().join("known.bin.mih");
    assert!(mih.exists());
    assert_eq!(run(&[]), built, "the saved index answers as the built one");
    assert_eq!(run(&["--index", mih.to_str().unwrap()]), built);
    // A saved index of another list is not used (a note says so) and the answers stand; named
    // explicitly, it is an error.
    let other_csv = tmp.path().join("other.csv");
    let other = tmp.path().join("other.bin");
    let o = scanlab(&[
        "list",
        "build",
        "--out",
        other_csv.to_str().unwrap(),
        mods.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let o = scanlab(&[
        "list",
        "export",
        "--format",
        "bin",
        other_csv.to_str().unwrap(),
    ]);
    std::fs::write(&other, &o.stdout).unwrap();
    let other_mih = tmp.path().join("other.bin.mih");
    let o = scanlab(&[
        "list",
        "index",
        other.to_str().unwrap(),
        "--out",
        other_mih.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    std::fs::copy(&other_mih, &mih).unwrap();
    let o = scanlab(&[
        "match",
        "--list",
        bin.to_str().unwrap(),
        mods.to_str().unwrap(),
    ]);
    assert_eq!(stdout(&o), built);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not used"));
    let o = scanlab(&[
        "match",
        "--list",
        bin.to_str().unwrap(),
        "--index",
        mih.to_str().unwrap(),
        mods.to_str().unwrap(),
    ]);
    assert_exit(&o, 2);
    // A text list cannot be indexed: the error says how to convert it.
    let o = scanlab(&["list", "index", csv.to_str().unwrap()]);
    assert_exit(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("list export --format bin"));
}

#[test]
fn the_fast_decoding_path_is_off_unless_asked_for() {
    let rel = "images/reg-test-input/exif-rotn/exif-rotn-1.jpg";
    let path = shared().join("pdq-reference").join(rel);
    let exact = scanlab(&["hash", path.to_str().unwrap()]);
    let (hash, quality, _) = golden(rel);
    assert_eq!(
        stdout(&exact),
        format!("{hash},{quality},{}\n", path.display())
    );
    let fast = scanlab(&["hash", "--fast-decode", path.to_str().unwrap()]);
    assert!(fast.status.success());
    let fast_hash = stdout(&fast).split(',').next().unwrap().to_string();
    assert_ne!(
        fast_hash, hash,
        "a 4032x3024 photo is decoded at 1/8 on the fast path"
    );
    let d = scanlab_pdq::Hash256::from_hex(&fast_hash)
        .unwrap()
        .distance(&scanlab_pdq::Hash256::from_hex(&hash).unwrap());
    assert!(d <= 24, "{d} bits from the exact hash");
}
