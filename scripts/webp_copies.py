"""WebP copies of photos, as a user's tools make them (Pillow, default method): reads JSON lines
with a "file" field (`scanlab corpus list`) on stdin, writes to the folder given a lossy copy
(quality 80) of every photo and a lossless copy of every fourth, so that more than half of the
benchmark's files are WebP, as on the web today. Used by scripts/bench-peer.sh."""
import json
import os
import sys

from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for i, line in enumerate(sys.stdin):
    src = json.loads(line)["file"]
    stem = os.path.join(out, f"{i:03d}-" + os.path.splitext(os.path.basename(src))[0])
    with Image.open(src) as im:
        im = im.convert("RGB")
        im.save(stem + "-q80.webp", quality=80)
        if i % 4 == 0:
            im.save(stem + "-lossless.webp", lossless=True)
