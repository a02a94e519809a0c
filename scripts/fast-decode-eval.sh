#!/usr/bin/env bash
# What the fast decoding path costs in recall and false positives: `scanlab evaluate` on the
# dev corpus twice with one seed, exact and with --fast-decode, then the figures side by side.
#
#   scripts/fast-decode-eval.sh [OUT] [EXTRA EVALUATE ARGS...]     (default OUT: target/fast-eval)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/fast-eval}
shift || true
cargo build -q --release -p scanlab
./target/release/scanlab -q evaluate --out "$OUT/exact" "$@"
./target/release/scanlab -q evaluate --out "$OUT/fast" --fast-decode "$@"
python3 scripts/fast_decode_eval.py "$OUT/exact/results.json" "$OUT/fast/results.json"
