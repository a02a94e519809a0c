#!/usr/bin/env bash
# Side-by-side PDQ speed: scanlab against Meta's C++ core (the PyPI `pdqhash` wheel, with
# Pillow decoding), on the same files, in one run. Prints ratios.
#
#   scripts/bench-peer.sh [IMAGE_OR_FOLDER...]
#
# With no arguments: the dev corpus and WebP copies of it made with Pillow (a lossy copy of every
# photo, a lossless copy of every fourth: 55% of the files are WebP), cached in
# target/bench-webp. The ratios are printed for all files and per format.
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
if [ $# -eq 0 ]; then
  COPIES=target/bench-webp
  if [ ! -f "$COPIES/.done" ]; then
    ./target/release/scanlab -q corpus list | "$VENV/bin/python" scripts/webp_copies.py "$COPIES"
    touch "$COPIES/.done"
  fi
  mapfile -t CORPUS < <(./target/release/scanlab -q corpus list | "$VENV/bin/python" -c \
    'import json,sys; [print(json.loads(l)["file"]) for l in sys.stdin]')
  set -- "${CORPUS[@]}" "$COPIES"
fi
OUT=$(mktemp)
./target/release/scanlab bench hash --reps 5 "$@" > "$OUT"
"$VENV/bin/python" scripts/bench_peer.py "$OUT"
rm -f "$OUT"
