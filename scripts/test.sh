#!/usr/bin/env bash
# The test command: formatting, lints, then every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
# A few seconds of every fuzz target: each must build and run clean.
bash scripts/fuzz.sh smoke
