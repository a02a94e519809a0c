//! The demo page in a real browser: `crates/demo/browser/demo.test.mjs` (Node's test runner,
//! playwright-core, Debian's Chromium) against this build's `scanlab demo`. It deploys every
//! registered scheme with the page's switch and checks what Bob and every party see, runs the
//! attack buttons and an accessibility check, and keeps a screenshot per scheme in
//! `target/demo-screenshots/`. `scripts/setup.sh` installs Chromium and the npm packages.

use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_page_works_in_chromium_for_every_scheme() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser tests' npm packages are missing: run scripts/setup.sh (it runs `npm ci` in {})",
        dir.display()
    );
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "demo.test.mjs"])
        .current_dir(&dir)
        .env("SCANLAB_BIN", env!("CARGO_BIN_EXE_scanlab"))
        .status()
        .expect("node (Node.js) is needed for the browser tests: run scripts/setup.sh");
    assert!(
        status.success(),
        "the browser tests failed (their report is above)"
    );
}
