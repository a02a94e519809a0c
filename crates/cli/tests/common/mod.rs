//! Shared by the black-box tests of the `scanlab` binary. Each test file uses some of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The repository's `testdata/`, or `$SCANLAB_SHARED` (same layout).
pub fn shared() -> PathBuf {
    std::env::var_os("SCANLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"))
}

/// Runs scanlab with `args`.
pub fn scanlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scanlab"))
        .args(args)
        .output()
        .expect("runs")
}

/// Runs scanlab with `stdin` as its standard input.
pub fn scanlab_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_scanlab"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// What a run printed on stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Asserts a run's exit code, showing its stderr otherwise.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
