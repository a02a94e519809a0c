#!/usr/bin/env bash
# Makes .venv-te, a virtual environment with Meta's ThreatExchange command line (PyPI
# `threatexchange` 1.2.17 and the `pdqhash` wheel it hashes with), for the interop test
# (crates/cli/tests/threatexchange.rs). Prints the path of its `threatexchange` program.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-te
if [ ! -x "$VENV/bin/threatexchange" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "threatexchange==1.2.17" "pdqhash==0.2.8" "pillow>=11" "faiss-cpu>=1.8"
fi
echo "$PWD/$VENV/bin/threatexchange"
