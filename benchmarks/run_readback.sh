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
WORK=$(mktemp -d /tmp/relaycore-run-readback.XXXXXX)
source benchmarks/lib/relay.sh
trap 'stop_relay; rm -rf "$WORK"' EXIT

machine_line
"$BENCH" seed --db "$WORK/relay.db" --events "$EVENTS" --ids-out "$WORK/ids"

# shellcheck disable=SC2086
start_relay --db "$WORK/relay.db" ${RELAY_FLAGS:-}

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
