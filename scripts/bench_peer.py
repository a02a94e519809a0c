"""Python half of scripts/bench-peer.sh: times Pillow + pdqhash on the files scanlab timed,
checks that both produce the same hashes, and prints the ratios."""
import json
import os
import statistics
import sys
import time
from multiprocessing import Pool

import numpy as np
import pdqhash
from PIL import Image


def load(path):
    return np.asarray(Image.open(path).convert("RGB"))


def to_hex(bits):
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def file_to_hash(path):
    return pdqhash.compute(load(path))[1]


def file_format(path):
    """JPEG, PNG, WebP (lossy or lossless, from the VP8/VP8L chunk) or another, by content."""
    head = open(path, "rb").read(40)
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        chunk = head[12:16]
        if chunk == b"VP8X":
            return "webp (extended)"
        return "webp lossless" if chunk == b"VP8L" else "webp lossy"
    return "other"


def main():
    rust = json.load(open(sys.argv[1]))
    images = rust["images"]
    rows, mismatched = [], 0
    for im in images:
        px = load(im["path"])
        bits, _ = pdqhash.compute(px)
        if to_hex(bits) != im["pdq"]:
            mismatched += 1
        times = []
        for _ in range(5):
            t = time.perf_counter()
            pdqhash.compute(px)
            times.append((time.perf_counter() - t) * 1e3)
        rows.append((im, statistics.median(times)))
    paths = [im["path"] for im in images]
    per_file = []
    t = time.perf_counter()
    for p in paths:
        t1 = time.perf_counter()
        file_to_hash(p)
        per_file.append((time.perf_counter() - t1) * 1e3)
    py_one = time.perf_counter() - t
    n = os.cpu_count() or 1
    with Pool(n) as pool:
        t = time.perf_counter()
        pool.map(file_to_hash, paths, chunksize=4)
        py_all = time.perf_counter() - t

    big = [(im, py) for im, py in rows if im["width"] * im["height"] >= 1_000_000]
    print(f"scanlab {rust['scanlab_version']} (backend {rust['backend']}) vs pdqhash 0.2.8 (Meta's C++ core) + Pillow {Image.__version__}")
    print(f"{len(images)} images; hashes identical on {len(images) - mismatched}/{len(images)}")
    print()
    print("pixels -> hash, one thread, median of 5 (ms)")
    print(f"{'image':48} {'WxH':>11} {'pdqhash':>9} {'scanlab':>9} {'ratio':>7}")
    shown = sorted(big, key=lambda r: -r[0]["width"] * r[0]["height"])[:12]
    for im, py in shown:
        name = os.path.basename(im["path"])[-48:]
        ratio = py / im["pixels_to_hash_ms"]
        print(f"{name:48} {im['width']:>5}x{im['height']:<5} {py:9.2f} {im['pixels_to_hash_ms']:9.2f} {ratio:6.1f}x")
    if big:
        ratios = [py / im["pixels_to_hash_ms"] for im, py in big]
        gm = float(np.exp(np.mean(np.log(ratios))))
        print(f"images >= 1 MP: {len(big)}; ratio geometric mean {gm:.1f}x, min {min(ratios):.1f}x, max {max(ratios):.1f}x")
    allr = [py / im["pixels_to_hash_ms"] for im, py in rows]
    print(f"all images: ratio geometric mean {float(np.exp(np.mean(np.log(allr)))):.1f}x")
    print()
    print("file -> hash over all images, decoding included (s)")
    print(f"{'':24} {'Pillow+pdqhash':>15} {'scanlab':>9} {'ratio':>7}")
    print(f"{'one thread':24} {py_one:15.2f} {rust['file_to_hash_one_thread_s']:9.2f} {py_one / rust['file_to_hash_one_thread_s']:6.1f}x")
    print(f"{f'all cores ({n})':24} {py_all:15.2f} {rust['file_to_hash_all_cores_s']:9.2f} {py_all / rust['file_to_hash_all_cores_s']:6.1f}x")
    print()
    print("file -> hash by format, one thread (total ms over the files of each format)")
    print(f"{'format':24} {'files':>6} {'Pillow+pdqhash':>15} {'scanlab':>9} {'ratio':>7}")
    by = {}
    for im, py in zip(images, per_file):
        by.setdefault(file_format(im["path"]), []).append((py, im["file_to_hash_ms"]))
    for fmt, v in sorted(by.items()):
        p, r = sum(x for x, _ in v), sum(y for _, y in v)
        print(f"{fmt:24} {len(v):6} {p:15.0f} {r:9.0f} {p / r:6.1f}x")
    print()
    fast = rust["fast_file_to_hash_one_thread_s"]
    print(f"fast decoding path (--fast-decode, min side {rust['fast_min_side']} px; NOT exact), one thread")
    print(f"{'format':24} {'files':>6} {'Pillow+pdqhash':>15} {'scanlab fast':>12} {'ratio':>7} {'vs exact':>9}")
    print(f"{'all':24} {len(images):6} {py_one * 1e3:15.0f} {fast * 1e3:12.0f} {py_one / fast:6.1f}x {rust['file_to_hash_one_thread_s'] / fast:8.1f}x")
    byf = {}
    for im, py in zip(images, per_file):
        byf.setdefault(file_format(im["path"]), []).append((py, im["fast_file_to_hash_ms"], im["file_to_hash_ms"]))
    for fmt, v in sorted(byf.items()):
        p, r, e = (sum(x[k] for x in v) for k in range(3))
        print(f"{fmt:24} {len(v):6} {p:15.0f} {r:12.0f} {p / r:6.1f}x {e / r:8.1f}x")
    dist = sorted(im["fast_distance"] for im in images)
    q = lambda f: dist[min(len(dist) - 1, int(f * len(dist)))]
    print(
        f"distance from the exact hash (bits), {len(dist)} files: median {statistics.median(dist):g}, "
        f"90th percentile {q(0.9)}, 99th {q(0.99)}, max {dist[-1]}; over 31 (a lost match at PDQ's "
        f"threshold): {sum(d > 31 for d in dist)}"
    )
    if mismatched:
        sys.exit(f"{mismatched} hashes differ between the two implementations")


if __name__ == "__main__":
    main()
