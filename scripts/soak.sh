#!/usr/bin/env bash
# Load and soak of the provider on loopback, driven by an outside load generator (wrk, from
# Debian's packages): honest clients sending and reading messages, with hostile clients among
# them (junk uploads, login floods, forged logins, malformed JSON, bad tokens) and slow
# clients holding half-sent requests. Bounded in time; every target is 127.0.0.1.
#
#   bash scripts/soak.sh [SECONDS=30] [HONEST=32] [HOSTILE=64] [SLOW=200]
#
# Prints throughput and p50/p99 of the honest clients, the hostile clients' request count,
# the provider's RSS before, after and at peak, and disk growth per honest message.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}; HONEST=${2:-32}; HOSTILE=${3:-64}; SLOW=${4:-200}
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p scanlab
BIN=$PWD/target/release/scanlab
TMP=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$TMP"' EXIT
"$BIN" serve --listen 127.0.0.1:0 --data "$TMP/data" > "$TMP/serve.out" 2> "$TMP/serve.err" &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" "$TMP/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$TMP/serve.out")
PORT=${URL##*:}
"$BIN" bench accounts --server "$URL" --n "$HONEST" --homes "$TMP/homes" > "$TMP/tokens"
kb() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$SERVER/status"; }
disk() { du -sb "$TMP/data" | cut -f1; }
count() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" "$TMP/data/provider.sqlite"; }
RSS0=$(kb VmRSS); DISK0=$(disk); MSG0=$(count)
python3 scripts/soak/slowloris.py 127.0.0.1 "$PORT" "$SLOW" "$SECS" > "$TMP/slow.txt" &
SLOWPID=$!
wrk -t1 -c "$HOSTILE" -d "${SECS}s" --timeout 10s -s scripts/soak/hostile.lua "$URL" > "$TMP/hostile.txt" 2>&1 &
HOSTILEPID=$!
SOAK_TOKENS="$TMP/tokens" wrk -t "$HONEST" -c "$HONEST" -d "${SECS}s" --timeout 10s --latency \
  -s scripts/soak/honest.lua "$URL" > "$TMP/honest.txt" 2>&1
wait "$HOSTILEPID" "$SLOWPID" || true
sleep 1
RSS1=$(kb VmRSS); PEAK=$(kb VmHWM); DISK1=$(disk); MSG1=$(count)
echo "== honest ($HONEST connections, ${SECS} s)"; grep -E "Requests/sec|Latency|50%|99%|Non-2xx|Socket errors|requests in" "$TMP/honest.txt"
echo "== hostile ($HOSTILE connections)"; grep -E "Requests/sec|requests in|Non-2xx|Socket errors" "$TMP/hostile.txt"
cat "$TMP/slow.txt"
MSGS=$((MSG1 - MSG0))
echo "== provider"
echo "RSS: ${RSS0} kB before, ${RSS1} kB after, ${PEAK} kB peak"
echo "messages stored: $MSGS; disk growth: $((DISK1 - DISK0)) bytes, $(( (DISK1 - DISK0) / (MSGS > 0 ? MSGS : 1) )) bytes per message"
