#!/usr/bin/env bash
# Side-by-side PDQ speed: scanlab against Meta's C++ core (the PyPI `pdqhash` wheel, with
# Pillow decoding), on the same files, in one run. Prints ratios.
#
#   scripts/bench-peer.sh [IMAGE_OR_FOLDER...]     (default: the dev corpus)
#
# Installs the Python peer in .venv-peer (pip, from PyPI) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-peer
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "pdqhash==0.2.8" "pillow>=11" "numpy>=2"
fi
cargo build -q --release -p scanlab
OUT=$(mktemp)
./target/release/scanlab bench hash --reps 5 "$@" > "$OUT"
"$VENV/bin/python" scripts/bench_peer.py "$OUT"
rm -f "$OUT"
