#!/usr/bin/env bash
# scanlab's exact Hamming index against FAISS (PyPI faiss-cpu): IndexBinaryFlat, and
# IndexBinaryMultiHash where it fits in memory; same data, same queries, same thread count, one
# run. Then scanlab as a user runs it: `scanlab list index LIST.bin` once, and
# `scanlab match --list LIST.bin --hashes Q` with the saved index (mapped) and without it, with
# wall time and peak memory. Prints a table; hits are compared with FAISS Flat's query by query.
# On the uniform lists every layout of the trade-off (bytes a hash against query time) is timed
# too; all figures go to target/bench-index/rows.jsonl, which `scanlab bench index-plot` draws.
#
#   scripts/bench-index.sh [SIZES...]      (default: 1000000 10000000 100000000)
#
# 100M needs about 16 GB of memory and 10 GB of disk (the list is written once, 3.2 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-peer
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c "import faiss" 2>/dev/null || "$VENV/bin/pip" install -q "faiss-cpu>=1.8" "numpy>=2"
cargo build -q --release -p scanlab
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000 10000000 100000000)
OUT=target/bench-index
rm -rf "$OUT"; mkdir -p "$OUT"
echo "| n | list | layout (default) | scanlab build | scanlab 1000 queries | FAISS Flat | FAISS MultiHash (build + query) | vs FAISS Flat | hits vs FAISS Flat | bytes/hash (all) | \`scanlab match\`, saved index: wall, peak memory | \`scanlab match\`, index built: wall |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in "${SIZES[@]}"; do
  p=$(python3 -c "print(max(1, ($n - 1).bit_length()))")
  for shape in uniform clustered; do
    layouts=(--layout default)
    if [ "$shape" = uniform ] && [ "$p" -ge 14 ]; then
      # The trade-off: 16, 12 and 10 chunks; 8 chunks of 32-bit entries with directories of
      # 2^(p-6)..2^(p-3); and the default's 8 chunks of p+6 bits with other directories.
      e=$((p + 6 < 32 ? p + 6 : 32))
      layouts+=(--layout 16 --layout 12 --layout 10 --layout "8:$((p - 6))" --layout "8:$((p - 5))" --layout "8:$((p - 4))" --layout "8:$((p - 3))" --layout "8:$((p - 6)):$e" --layout "8:$((p - 4)):$e")
    fi
    ./target/release/scanlab -q bench index --n "$n" --shape "$shape" --queries 1000 --radius 31 --threads 2 "${layouts[@]}" --dump "$OUT/$n-$shape"
    OMP_NUM_THREADS=2 "$VENV/bin/python" scripts/bench_index.py "$OUT/$n-$shape" ./target/release/scanlab
    rm -f "$OUT/$n-$shape/list.bin" "$OUT/$n-$shape/list.bin.mih"
  done
done
echo
echo "scanlab $(./target/release/scanlab --version | head -1 | cut -d' ' -f2); FAISS $("$VENV/bin/python" -c 'import faiss; print(faiss.__version__)'); 2 threads each; radius 31 (FAISS: < 32); command: scripts/bench-index.sh ${SIZES[*]}"
./target/release/scanlab -q bench index-plot "$OUT/rows.jsonl" --out "$OUT/tradeoff.svg"
echo "trade-off plot: $OUT/tradeoff.svg"
