#!/usr/bin/env bash
# The demo's browser tests alone: `scanlab demo` in headless Debian Chromium, driven by
# playwright-core (crates/demo/browser). `cargo test --workspace` runs them too
# (crates/cli/tests/demo_browser.rs); scripts/setup.sh installs chromium and the npm packages.
# Screenshots (one per scheme, and the attacks) go to target/demo-screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p scanlab --test demo_browser -- --nocapture
