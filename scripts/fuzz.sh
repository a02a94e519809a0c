#!/usr/bin/env bash
# The fuzz targets under fuzz/ (cargo-fuzz, libFuzzer).
#
#   bash scripts/fuzz.sh smoke            every target for a few seconds (what the tests run)
#   bash scripts/fuzz.sh run TARGET SECS  one target, longer: e.g. run decode 600
#   bash scripts/fuzz.sh all SECS         every target, two at a time, SECS each
#
# Seed corpora are made from the test data (testdata/: Meta's PDQ test images and golden
# lists) and from small generated inputs, into fuzz/corpus/TARGET (not committed). Crashes
# land in fuzz/artifacts/TARGET. cargo-fuzz needs nightly features; on the stable toolchain
# RUSTC_BOOTSTRAP=1 enables them, as here.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
SHARED="${SCANLAB_SHARED:-$(pwd)/testdata}"
TARGETS=(decode list_parse log_proofs provider_requests mls_process scheme_halves)
# Long runs: optimised, with debug assertions and overflow checks (cargo-fuzz's default), and
# more codegen units for a faster build. The smoke run builds unoptimised, which builds much
# faster and is plenty for a few seconds.
# The smoke run also drops AddressSanitizer (the long runs keep it): a few seconds per target
# check that each builds and runs clean, and the instrumented build would double its cost.
BUILD=(--codegen-units 16)
[ "${1:-smoke}" = smoke ] && BUILD=(--dev --sanitizer none)

command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz missing (bash scripts/setup.sh installs it)" >&2; exit 1; }

seed() {
  local c=fuzz/corpus
  mkdir -p "$c"/{decode,list_parse,log_proofs,provider_requests,mls_process,scheme_halves}
  # Images: a few of each format Meta's test set has.
  find "$SHARED/pdq-reference/images" -type f -size -200k 2>/dev/null | sort | head -40 |
    while read -r f; do cp -n "$f" "$c/decode/$(basename "$f")" 2>/dev/null || true; done
  printf 'P6\n2 2\n255\n\0\0\0\1\1\1\2\2\2\3\3\3' > "$c/decode/tiny.ppm"
  # Lists: the golden CSVs, a hex line, JSON lines and a header.
  for f in "$SHARED"/golden/*.csv; do [ -f "$f" ] && head -c 20000 "$f" > "$c/list_parse/$(basename "$f")"; done
  printf 'f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22\n' > "$c/list_parse/hex"
  printf 'pdq,id,label\nf8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,1,x\n' > "$c/list_parse/header"
  printf '{"id":1,"hash":"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22","label":"x"}\n' > "$c/list_parse/jsonl"
  printf '{"head":{"size":1},"proof":{}}' > "$c/log_proofs/min.json"
  # Requests: selector byte, then a body.
  printf '\x05{"group":"g","recipients":["bob"],"payload":"AAAA"}' > "$c/provider_requests/send"
  printf '\x01{"name":"alice"}' > "$c/provider_requests/challenge"
  printf '\x07{"ids":[1,2]}' > "$c/provider_requests/ack"
  printf '\x00{"name":"x","identity_key":"00"}' > "$c/provider_requests/register"
  printf '\x03{"blob":"00","hash":"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"}' > "$c/scheme_halves/s3"
  printf '\x04{"blob":"00","split":"dct16","intermediate":"AAAA"}' > "$c/scheme_halves/s4"
  printf '\x05{"blob":"00","sealed":"AAAA"}' > "$c/scheme_halves/s5"
  printf '\x0a{"group":"g","recipients":["u"],"payload":"AAAA","scheme":{"escrow":"AAAA"}}' > "$c/scheme_halves/s2"
  printf '\x00\x01\x00\x01' > "$c/mls_process/min"
}

run() {
  local target=$1 secs=$2
  cargo fuzz run --fuzz-dir fuzz "${BUILD[@]}" "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$secs" -rss_limit_mb=3072 -timeout=20 -print_final_stats=1 2>&1 |
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|Done)" || true
  if ls "fuzz/artifacts/$target"/crash-* "fuzz/artifacts/$target"/timeout-* "fuzz/artifacts/$target"/oom-* >/dev/null 2>&1; then
    echo "fuzz: $target left artifacts in fuzz/artifacts/$target" >&2
    return 1
  fi
}

case "${1:-smoke}" in
  smoke)
    seed
    cargo fuzz build --fuzz-dir fuzz "${BUILD[@]}" >/dev/null
    for t in "${TARGETS[@]}"; do echo "fuzz: $t"; run "$t" "${FUZZ_SMOKE_SECONDS:-8}"; done
    echo "fuzz smoke: all ${#TARGETS[@]} targets ran clean"
    ;;
  run) seed; cargo fuzz build --fuzz-dir fuzz "${BUILD[@]}" "$2" >/dev/null; run "$2" "$3" ;;
  all)
    seed
    cargo fuzz build --fuzz-dir fuzz "${BUILD[@]}" >/dev/null
    for ((i = 0; i < ${#TARGETS[@]}; i += 2)); do
      run "${TARGETS[i]}" "$2" > "fuzz/${TARGETS[i]}.log" &
      [ $((i + 1)) -lt ${#TARGETS[@]} ] && run "${TARGETS[i + 1]}" "$2" > "fuzz/${TARGETS[i + 1]}.log" &
      wait
    done
    for t in "${TARGETS[@]}"; do echo "== $t"; cat "fuzz/$t.log"; done
    ;;
  *) echo "usage: scripts/fuzz.sh smoke | run TARGET SECS | all SECS" >&2; exit 2 ;;
esac
