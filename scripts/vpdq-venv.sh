#!/usr/bin/env bash
# Makes .venv-vpdq, a virtual environment with Meta's vPDQ (PyPI `vpdq` 0.2.5, which compiles
# Meta's C++ against this machine's FFmpeg: the `-dev` packages of scripts/setup.sh), the
# oracle of the exactness tests (crates/vpdq/tests/reference.rs) and the peer of the video
# benchmark. Prints the path of its python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-vpdq
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import vpdq" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "vpdq==0.2.5" >&2
fi
echo "$PWD/$VENV/bin/python"
