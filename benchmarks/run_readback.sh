#!/usr/bin/env bash
# Read-back by id: relaycore-relay (the SQLite default) on a store of EVENTS events built in
# process, and, in another process, CONNECTIONS connections each keeping one REQ of BATCH
# random stored ids in flight. Prints events/s, REQ->EOSE latency and the relay's CPU per event
# read back (utime + stime from /proc), then a RESULT line per figure. Loopback only.
#
#   benchmarks/run_readback.sh [BUILD_DIR]    (default build/ci; a Release or RelWithDebInfo
#                                              build of relaycore-relay and
#                                              relaycore-bench-isolation)
#
# Knobs (environment): EVENTS (100000), CONNECTIONS (8), BATCH (250), SECONDS (10),
# RELAY_FLAGS (extra relaycore-relay flags, e.g. "--readers 2").
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/ci}
RELAY=$BUILD/examples/relaycore-relay
BENCH=$BUILD/benchmarks/loadgen/relaycore-bench-isolation
for bin in "$RELAY" "$BENCH"; do
  [[ -x $bin ]] || { echo "missing $bin: build relaycore-relay relaycore-bench-isolation" >&2; exit 1; }
done
EVENTS=${EVENTS:-100000}
CONNECTIONS=${CONNECTIONS:-8}
BATCH=${BATCH:-250}
SECONDS_MEASURED=${SECONDS:-10}
WORK=$(mktemp -d)
RELAY_TIMEOUT_PID=
trap '[[ -n $RELAY_TIMEOUT_PID ]] && kill "$RELAY_TIMEOUT_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//'), $(date -u '+%F %H:%M UTC')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH" seed --db "$WORK/relay.db" --events "$EVENTS" --ids-out "$WORK/ids"

# shellcheck disable=SC2086
timeout 900 "$RELAY" --listen 127.0.0.1:0 --db "$WORK/relay.db" ${RELAY_FLAGS:-} \
  >"$WORK/relay.out" 2>&1 &
RELAY_TIMEOUT_PID=$!
URL=
for _ in $(seq 100); do
  URL=$(grep -o -m1 'ws://[0-9.:]*' "$WORK/relay.out" 2>/dev/null | head -n1 || true)
  [[ -n $URL ]] && break
  sleep 0.1
done
[[ -n $URL ]] || { echo "relay did not start" >&2; cat "$WORK/relay.out" >&2; exit 1; }
RELAY_PID=$(pgrep -P "$RELAY_TIMEOUT_PID")

timeout $((SECONDS_MEASURED + 120)) "$BENCH" readback --url "$URL" --ids "$WORK/ids" \
  --connections "$CONNECTIONS" --batch "$BATCH" --seconds "$SECONDS_MEASURED" \
  --relay-pid "$RELAY_PID" | tee "$WORK/readback.json"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$WORK/readback.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"read-back by id: {r['events_per_s']:.0f} events/s, REQ->EOSE p50 {r['eose_ms']['p50']:.2f} "
      f"p99 {r['eose_ms']['p99']:.2f} ms, relay CPU {r['relay_cpu_us_per_event']:.2f} us/event")
print(f"RESULT readback_events_per_s {r['events_per_s']:.0f}")
print(f"RESULT readback_relay_cpu_us_per_event {r['relay_cpu_us_per_event']:.3f}")
print(f"RESULT readback_eose_ms_p99 {r['eose_ms']['p99']:.3f}")
PY
