#!/usr/bin/env bash
# Installs what building and testing scanlab needs on a Debian machine, idempotently:
# - cmake and nasm: the `turbojpeg` crate builds libjpeg-turbo 3 (Pillow's JPEG decoder) from
#   its vendored source, so decoded pixels match the golden values exactly;
# - fresh package lists: the dev corpus is fetched with `apt-get download`.
# The Rust toolchain itself comes with the machine (rustup).
set -euo pipefail
need=()
for bin in cmake nasm; do
  command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# Package lists older than a day (or absent) are refreshed: apt-get download needs them.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -qq
fi
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# cargo-fuzz runs the fuzz targets (scripts/fuzz.sh), which the tests smoke-run.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
echo "setup: build tools present (cmake, nasm, cargo-fuzz); package lists fresh" >&2
