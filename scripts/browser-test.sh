#!/usr/bin/env bash
# The demo's browser tests: `scanlab demo` in headless Debian Chromium, driven by
# playwright-core (crates/demo/browser). scripts/setup.sh installs chromium and the npm
# packages. Screenshots (one per scheme, and the attacks) go to target/demo-screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p scanlab --bin scanlab
cd crates/demo/browser
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent
SCANLAB_BIN="$PWD/../../../target/debug/scanlab" node --test --test-concurrency=1 demo.test.mjs
