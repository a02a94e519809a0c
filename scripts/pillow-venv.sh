#!/usr/bin/env bash
# Makes .venv-pillow, a virtual environment with Pillow 13.0.0 from PyPI (its wheel bundles
# libjpeg-turbo and libwebp), the oracle of the WebP pixel test
# (crates/imaging/tests/webp_pillow.rs) and the maker of its WebP copies. Prints the path of
# its python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-pillow
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import PIL.features as f; assert f.check('webp')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "pillow==13.0.0" >&2
fi
echo "$PWD/$VENV/bin/python"
