#!/usr/bin/env bash
# scanlab's exact Hamming index against FAISS (PyPI faiss-cpu): IndexBinaryFlat and
# IndexBinaryMultiHash, same data, same queries, same thread count, one run. Prints a table of
# times, ratios and recall (hits compared query by query).
#
#   scripts/bench-index.sh [SIZES...]      (default: 1000000 10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-peer
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c "import faiss" 2>/dev/null || "$VENV/bin/pip" install -q "faiss-cpu>=1.8" "numpy>=2"
cargo build -q --release -p scanlab
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000 10000000)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "| n | list | scanlab MIH build | scanlab 1000 queries | FAISS Flat | FAISS MultiHash (build + query) | vs best FAISS | recall vs FAISS Flat | bytes/hash |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in "${SIZES[@]}"; do
  for shape in uniform clustered; do
    ./target/release/scanlab bench index --n "$n" --shape "$shape" --queries 1000 --radius 31 --threads 2 --dump "$WORK/$n-$shape"
    OMP_NUM_THREADS=2 "$VENV/bin/python" scripts/bench_index.py "$WORK/$n-$shape"
  done
done
echo
echo "scanlab $(./target/release/scanlab --version | head -1 | cut -d' ' -f2); 2 threads each; radius 31 (FAISS: < 32); command: scripts/bench-index.sh ${SIZES[*]}"
