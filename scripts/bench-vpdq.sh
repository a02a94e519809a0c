#!/usr/bin/env bash
# Side-by-side vPDQ speed: `scanlab vhash` against Meta's vpdq (PyPI `vpdq`, Meta's C++ on this
# machine's FFmpeg), every frame at native size, decoding counted, both pinned to one core
# (taskset -c 0), on the same files in one run; best of --reps runs each. Prints frames per
# second of each and the ratio.
#
#   scripts/bench-vpdq.sh [VIDEO...]     (default: Meta's sample videos in ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/vpdq-venv.sh)
cargo build -q --release -p scanlab
if [ $# -eq 0 ]; then set -- ../shared/vpdq-reference/videos/*.mp4; fi
REPS=${REPS:-3}
"$PY" - "$REPS" "$@" <<'PYEOF'
import subprocess, sys, time, vpdq
reps, videos = int(sys.argv[1]), sys.argv[2:]
def best(f):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); n = f(); ts.append(time.perf_counter() - t)
    return min(ts), n
tot_m = tot_s = frames = 0
print(f"{'video':44} {'frames':>6} {'Meta fps':>9} {'scanlab fps':>11} {'ratio':>6}")
for v in videos:
    def meta():
        # Meta's hashing threads set to 1; its decoder keeps FFmpeg's own thread choice, and the
        # process is pinned to one core, as scanlab's is.
        import os; os.sched_setaffinity(0, {0})
        return len(vpdq.computeHash(v, seconds_per_hash=0, thread_count=1))
    def ours():
        out = subprocess.run(["taskset", "-c", "0", "./target/release/scanlab", "vhash", "-q",
                              "--seconds-per-hash", "0", "--threads", "1", v],
                             check=True, capture_output=True, text=True).stdout
        return out.count("\n")
    tm, nm = best(meta); ts, ns = best(ours)
    assert nm == ns, (v, nm, ns)
    tot_m += tm; tot_s += ts; frames += nm
    print(f"{v.split('/')[-1]:44} {nm:6} {nm/tm:9.0f} {ns/ts:11.0f} {tm/ts:6.2f}")
print(f"{'all':44} {frames:6} {frames/tot_m:9.0f} {frames/tot_s:11.0f} {tot_m/tot_s:6.2f}")
PYEOF
