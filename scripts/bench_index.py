"""FAISS half of scripts/bench-index.sh.

Loads the binary list and the queries `scanlab bench index --dump DIR` wrote, times FAISS's
binary indexes on them (Flat always; MultiHash where it fits in memory), checks scanlab's hits
query by query against FAISS Flat's, then runs scanlab as a user does (`scanlab list index`,
then `scanlab match --list LIST.bin --hashes Q` with the saved index and without it) and
measures each run's wall time and peak memory. Prints one table row and appends the row's
figures, and every layout scanlab timed, to DIR/../rows.jsonl for the README's table and plot.
"""
import json
import os
import resource
import subprocess
import sys
import time

import faiss
import numpy as np

d = sys.argv[1]
scanlab = sys.argv[2]
rs = json.load(open(os.path.join(d, "scanlab.json")))
n = rs["n"]
lst = os.path.join(d, "list.bin")
base = np.fromfile(lst, dtype=np.uint8, offset=64).reshape(-1, 32)
qs = np.fromfile(os.path.join(d, "queries.bin"), dtype=np.uint8).reshape(-1, 32)
assert base.shape[0] == n
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
del flat

# FAISS's multi-index keeps 16 tables of 8-byte ids: over 128 bytes a hash beside the codes,
# which at 100M is more than this machine's memory. Run it where it fits.
mh_build = mh_s = None
if n * (128 + 32) < 12e9:
    t = time.perf_counter()
    mh = faiss.IndexBinaryMultiHash(256, 16, 16)
    mh.nflip = rs["radius"] // 16  # pigeonhole: exact at this nflip
    mh.add(base)
    mh_build = time.perf_counter() - t
    t = time.perf_counter()
    lims, _, _ = mh.range_search(qs, r)
    mh_s = time.perf_counter() - t
    assert counts(lims) == flat_counts, "FAISS MultiHash disagrees with FAISS Flat"
    del mh
del base

ours = rs["hits_per_query"]
if ours != flat_counts:
    sys.exit("scanlab's hits differ from FAISS Flat's")


def run(args, stdout):
    """Runs scanlab in a child of a fresh Python, so its peak RSS is its own."""
    probe = (
        "import resource,subprocess,sys,time;"
        "t=time.perf_counter();"
        "p=subprocess.run(sys.argv[2:],stdout=open(sys.argv[1],'wb'));"
        "dt=time.perf_counter()-t;"
        "print(p.returncode,dt,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, stdout, *args], capture_output=True, text=True, check=True
    ).stdout.split()
    code, secs, kib = int(out[0]), float(out[1]), int(out[2])
    if code not in (0, 1):
        sys.exit(f"{' '.join(args)} exited {code}")
    return secs, kib * 1024


# scanlab as a user runs it: index the list once, then match a batch of hashes.
qhex = os.path.join(d, "queries.hex")
with open(qhex, "w") as f:
    for q in qs:
        f.write(bytes(q).hex() + "\n")
idx_json = os.path.join(d, "index.json")
index_s, index_rss = run([scanlab, "-q", "list", "index", lst], idx_json)
index_info = json.load(open(idx_json))
tiny = os.path.join(d, "tiny.bin")
with open(tiny, "wb") as f:
    f.write(open(lst, "rb").read(64)[:24] + (1).to_bytes(8, "little") + bytes(32) + bytes(32))
_, base_rss = run([scanlab, "-q", "match", "--list", tiny, "--hashes", qhex], os.devnull)
out = os.path.join(d, "match.jsonl")
match_s, match_rss = run([scanlab, "-q", "match", "--list", lst, "--hashes", qhex], out)
got = [len(json.loads(line)["matches"]) for line in open(out)]
assert got == flat_counts, "scanlab match (saved index) differs from FAISS Flat"
os.rename(lst + ".mih", lst + ".mih.off")
build_s, build_rss = run([scanlab, "-q", "match", "--list", lst, "--hashes", qhex], out)
os.rename(lst + ".mih.off", lst + ".mih")
got = [len(json.loads(line)["matches"]) for line in open(out)]
assert got == flat_counts, "scanlab match (index built) differs from FAISS Flat"

# Open alone: the saved index and a single query (cold page cache aside: the files were just
# written or read, as on a machine that matches often).
one = os.path.join(d, "one.hex")
with open(one, "w") as f:
    f.write(bytes(qs[0]).hex() + "\n")
open_s, _ = run([scanlab, "-q", "match", "--list", lst, "--hashes", one], os.devnull)
_, tiny_s_base = None, run([scanlab, "-q", "match", "--list", tiny, "--hashes", one], os.devnull)[0]

per_hash = (match_rss - base_rss) / n
best = flat_s if mh_s is None else min(flat_s, mh_s)
mh_cell = "does not fit" if mh_s is None else f"{mh_build:.2f} s + {mh_s * 1e3:.0f} ms"
print(
    f"| {n:,} | {rs['shape']} | {rs['layout']} | {rs['build_s']:.2f} s | {rs['query_s'] * 1e3:.0f} ms | "
    f"{flat_s * 1e3:.0f} ms | {mh_cell} | **{flat_s / rs['query_s']:.1f}×** ({best / rs['query_s']:.1f}× best) | "
    f"100%, identical per query | {rs['index_bytes_per_hash']:.1f} | "
    f"{match_s:.2f} s, {per_hash:.1f} B/hash | {build_s:.2f} s |"
)
row = {
    "n": n,
    "shape": rs["shape"],
    "scanlab_version": rs["scanlab_version"],
    "faiss_version": faiss.__version__,
    "threads": rs["threads"],
    "queries": rs["queries"],
    "faiss_flat_s": flat_s,
    "faiss_multihash_build_s": mh_build,
    "faiss_multihash_s": mh_s,
    "list_index_s": index_s,
    "list_index": index_info,
    "match_saved_s": match_s,
    "match_saved_peak_bytes": match_rss,
    "match_baseline_peak_bytes": base_rss,
    "match_saved_bytes_per_hash": per_hash,
    "match_one_query_s": open_s,
    "match_one_query_tiny_list_s": tiny_s_base,
    "match_built_s": build_s,
    "match_built_bytes_per_hash": (build_rss - base_rss) / n,
    "layouts": rs["layouts"],
}
with open(os.path.join(os.path.dirname(d.rstrip("/")), "rows.jsonl"), "a") as f:
    f.write(json.dumps(row) + "\n")
