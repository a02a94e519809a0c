"""Prints what the fast decoding path costs in an evaluation: two results.json of one seed, the
exact run and the `--fast-decode` run, side by side. Used by scripts/fast-decode-eval.sh.

    python3 scripts/fast_decode_eval.py EXACT/results.json FAST/results.json
"""
import json
import math
import sys

exact, fast = (json.load(open(p)) for p in sys.argv[1:3])


def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


# The pooled intervals below use this Wilson interval; check it first against the intervals
# scanlab itself recorded (its tested Wilson) for every per-edit recall point of both runs.
for run in (exact, fast):
    for h in run["comparison"]["hashes"]:
        for p in h["recall"]:
            lo, hi = wilson(p["matched"], p["copies"])
            assert abs(lo - p["ci95"][0]) < 1e-9 and abs(hi - p["ci95"][1]) < 1e-9, p

print(f"scanlab {exact['version']}; seed {exact['seed']} (exact) and {fast['seed']} (fast)")
print(f"exact: {exact['command']}")
print(f"fast:  {fast['command']}")
print()
print("PDQ at the hash (the evaluation's comparison: as-sent list images and edited copies; unrelated pairs)")
pe = next(h for h in exact["comparison"]["hashes"] if h["hash"] == "pdq")
pf = next(h for h in fast["comparison"]["hashes"] if h["hash"] == "pdq")
print(f"{'':34} {'exact':>22} {'fast':>22}")


def pooled(h, as_sent):
    pts = [p for p in h["recall"] if (p["edit"] == "as sent") == as_sent]
    k, n = sum(p["matched"] for p in pts), sum(p["copies"] for p in pts)
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {k / max(n, 1):.4f} [{lo:.3f}, {hi:.3f}]"


for as_sent, name in [(True, "recall, as sent"), (False, "recall, edited copies (pooled)")]:
    print(f"{name:34} {pooled(pe, as_sent):>22} {pooled(pf, as_sent):>22}")
print(
    f"{'unrelated pairs within radius':34} {pe['pairs_within']:>12} of {pe['pairs']:<7} {pf['pairs_within']:>12} of {pf['pairs']:<7}"
)
print(f"{'  rate, 95% interval':34} {str([f'{x:.1e}' for x in pe['fp_ci95']]):>22} {str([f'{x:.1e}' for x in pf['fp_ci95']]):>22}")
print()
print("Per scheme over the messenger (recall as sent, mean recall over edits; background images flagged)")
print(f"{'scheme':28} {'as sent exact':>13} {'fast':>7} {'edited exact':>13} {'fast':>7} {'FP exact':>12} {'FP fast':>12}")
fs = {s["name"]: s for s in fast["schemes"]}
worst = 0.0
for s in exact["schemes"]:
    f = fs.get(s["name"])
    if f is None:
        continue
    worst = max(worst, abs(s["recall_as_sent"] - f["recall_as_sent"]), abs(s["recall_edited"] - f["recall_edited"]))
    print(
        f"{s['name']:28} {s['recall_as_sent']:13.3f} {f['recall_as_sent']:7.3f} {s['recall_edited']:13.3f} "
        f"{f['recall_edited']:7.3f} {s['background_flagged']:>5}/{s['background_sent']:<6} {f['background_flagged']:>5}/{f['background_sent']:<6}"
    )
print()
print(f"largest change in a scheme's recall: {worst * 100:.1f} points")
n = sum(p["sent"] for p in exact["schemes"][0]["recall"]) if exact["schemes"] else 0
print(
    "What this cannot show: the list here holds the originals' hashes, and the messenger sends "
    "640-pixel copies, which the fast path decodes whole (it reduces only images whose shorter "
    "side is at least twice 256 px); so it measures the fast path on the list side. "
    f"Each recall is over the run's copies ({n} sends per scheme)."
)
