"""FAISS half of scripts/bench-index.sh: loads the list and queries scanlab wrote, times FAISS's
binary indexes on them, checks hits query by query, prints one table row."""
import json
import os
import sys
import time

import faiss
import numpy as np

d = sys.argv[1]
rs = json.load(open(os.path.join(d, "scanlab.json")))
base = np.fromfile(os.path.join(d, "base.bin"), dtype=np.uint8).reshape(-1, 32)
qs = np.fromfile(os.path.join(d, "queries.bin"), dtype=np.uint8).reshape(-1, 32)
faiss.omp_set_num_threads(rs["threads"])
r = rs["radius"] + 1  # FAISS range search keeps distances strictly below the radius


def counts(lims):
    return np.diff(lims).tolist()


flat = faiss.IndexBinaryFlat(256)
flat.add(base)
t = time.perf_counter()
lims, _, _ = flat.range_search(qs, r)
flat_s = time.perf_counter() - t
flat_counts = counts(lims)

t = time.perf_counter()
mh = faiss.IndexBinaryMultiHash(256, 16, 16)
mh.nflip = rs["radius"] // 16  # pigeonhole: exact at this nflip
mh.add(base)
mh_build = time.perf_counter() - t
t = time.perf_counter()
lims, _, _ = mh.range_search(qs, r)
mh_s = time.perf_counter() - t
mh_counts = counts(lims)

ours = rs["hits_per_query"]
recall = sum(min(a, b) for a, b in zip(ours, flat_counts)) / max(1, sum(flat_counts))
best = min(flat_s, mh_s)
assert mh_counts == flat_counts, "FAISS MultiHash disagrees with FAISS Flat"
print(
    f"| {rs['n']:,} | {rs['shape']} | {rs['build_s']:.2f} s | {rs['query_s'] * 1e3:.0f} ms | "
    f"{flat_s * 1e3:.0f} ms | {mh_build:.2f} s + {mh_s * 1e3:.0f} ms | **{best / rs['query_s']:.1f}×** | "
    f"{recall * 100:.1f}% ({'identical' if ours == flat_counts else 'DIFFERENT'}) | {rs['index_bytes_per_hash']:.1f} |"
)
if ours != flat_counts:
    sys.exit("scanlab's hits differ from FAISS Flat's")
