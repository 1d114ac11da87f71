#!/usr/bin/env bash
# The WebSocket figures, in a few minutes: (a) closed-loop maximum throughput,
# (b) deferred versus inline dispatch with 1,000 live subscribers, open loop at half of the
# closed-loop maximum taken with those same subscribers connected (runs interleaved, A B A B, on
# fresh databases, so machine noise hits both modes alike), and (d) RSS per idle WebSocket
# connection. Prints a summary; benchmarks/README.md records the figures.
#
#   benchmarks/run_ws.sh [BUILD_DIR]     (default build/ci; a build with benchmarks)
#
# Knobs (environment): EVENTS (closed loop, default 40000), CONNECTIONS (8), WINDOW (32),
# B_SECONDS (seconds of open-loop load per run, 10), B_MATCHING (subscribers whose REQ matches
# every event, 1000), B_IDLE (subscribers whose REQ matches none, 0), B_MAX_EVENTS (events of the
# closed-loop run that sets (b)'s rate, 4000), ROUNDS (A/B pairs, 3), IDLE_CONNECTIONS (10000),
# B_FRACTION (the open-loop rate as a fraction of that maximum, 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/ci}
RELAY=$BUILD/examples/relaycore-relay
LOADGEN=$BUILD/benchmarks/loadgen/relaycore-loadgen
MEMORY=$BUILD/benchmarks/loadgen/relaycore-bench-ws-memory
for bin in "$RELAY" "$LOADGEN" "$MEMORY"; do
  [[ -x $bin ]] || { echo "missing $bin: build relaycore-relay relaycore-loadgen relaycore-bench-ws-memory" >&2; exit 1; }
done
EVENTS=${EVENTS:-40000}
CONNECTIONS=${CONNECTIONS:-8}
WINDOW=${WINDOW:-32}
B_SECONDS=${B_SECONDS:-10}
B_MATCHING=${B_MATCHING:-1000}
B_IDLE=${B_IDLE:-0}
B_MAX_EVENTS=${B_MAX_EVENTS:-4000}
ROUNDS=${ROUNDS:-3}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
B_FRACTION=${B_FRACTION:-0.5}

WORK=$(mktemp -d /tmp/relaycore-run-ws.XXXXXX)
source benchmarks/lib/relay.sh
trap 'stop_relay; rm -rf "$WORK"' EXIT
ulimit -n "$(ulimit -Hn)"

machine_line

# (a) closed loop, default (deferred) dispatch, one matching subscriber.
start_relay
A=$("$LOADGEN" --url "$URL" --events "$EVENTS" --connections "$CONNECTIONS" --window "$WINDOW" \
  --subscribers 1 --json)
stop_relay
MAX=$(field "$A" events_per_s)
echo "(a) closed loop $CONNECTIONS x $WINDOW: $MAX events/s, ack p50 $(field "$A" ack_ms p50) ms" \
  "p99 $(field "$A" ack_ms p99) ms, timeouts $(field "$A" timeouts), rejected $(field "$A" rejected)"

# (b) The maximum with (b)'s subscribers connected (each event goes out to every matching one,
# so it is far below (a)), then open loop at half of it, deferred and inline interleaved.
# Half of the ack rate alone would still be far more than the fan-out can deliver.
start_relay
AB=$("$LOADGEN" --url "$URL" --events "$B_MAX_EVENTS" --connections "$CONNECTIONS" \
  --window "$WINDOW" --subscribers "$B_MATCHING" --idle-subscribers "$B_IDLE" --json)
stop_relay
# The maximum is what both the acks and the fan-out keep up with.
MAX_B=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); r=d['events_per_s']
r=min(r, d['delivered_events_per_s']) if d['subscribers'] else r; print(int(r))" "$AB")
echo "(b) closed loop with $B_MATCHING matching and $B_IDLE idle subscribers:" \
  "$(field "$AB" events_per_s) events/s acked, $(field "$AB" delivered_events_per_s) events/s" \
  "delivered to every subscriber; maximum $MAX_B events/s"
RATE=$(python3 -c "print(max(1, int(float('$MAX_B') * $B_FRACTION)))")
B_EVENTS=$((RATE * B_SECONDS))
declare -A ACK FIRST
for round in $(seq "$ROUNDS"); do
  for mode in deferred inline; do
    start_relay --dispatch "$mode"
    R=$("$LOADGEN" --url "$URL" --events "$B_EVENTS" --connections "$CONNECTIONS" --rate "$RATE" \
      --subscribers "$B_MATCHING" --idle-subscribers "$B_IDLE" --json)
    stop_relay
    ACK[$mode]="${ACK[$mode]:-} $(field "$R" ack_ms p99)"
    FIRST[$mode]="${FIRST[$mode]:-} $(field "$R" first_delivery_ms p99)"
    echo "(b) round $round $mode: $RATE events/s offered, $(field "$R" events_per_s) acked/s," \
      "ack p50 $(field "$R" ack_ms p50) p99 $(field "$R" ack_ms p99) p999 $(field "$R" ack_ms p999) ms;" \
      "first delivery p50 $(field "$R" first_delivery_ms p50) p99 $(field "$R" first_delivery_ms p99) ms;" \
      "timeouts $(field "$R" timeouts), undelivered $(field "$R" undelivered)"
  done
done

# (d) RSS per idle connection (the benchmark starts its own relay).
D=$("$MEMORY" --connections "$IDLE_CONNECTIONS" --json)

echo
echo "== summary =="
python3 - "$MAX" "${ACK[deferred]}" "${ACK[inline]}" "${FIRST[deferred]}" "${FIRST[inline]}" "$D" \
  "$B_MATCHING" "$B_IDLE" "$RATE" "$MAX_B" <<'PY'
import json, statistics, sys
mx, ad, ai, fd, fi, d, matching, idle, rate, mx_b = sys.argv[1:]
med = lambda s: statistics.median(float(x) for x in s.split())
ad, ai, fd, fi = med(ad), med(ai), med(fd), med(fi)
d = json.loads(d)
print(f"(a) closed-loop max throughput           {float(mx):10.0f} events/s")
print(f"(b) {int(matching)+int(idle)} subscribers ({matching} matching): closed-loop max {float(mx_b):.0f} events/s,")
print(f"    open loop at {rate} events/s (median of the rounds' p99s):")
print(f"    ack p99            deferred {ad:8.3f} ms   inline {ai:8.3f} ms   deferred is {100*(1-ad/ai):5.1f}% lower (goal >= 20%)")
print(f"    first-delivery p99 deferred {fd:8.3f} ms   inline {fi:8.3f} ms")
print(f"(d) idle connection RSS                  {d['kib_per_connection']:10.2f} KiB ({d['connections']} connections; goal <= 16 KiB)")
print(f"RESULT ws_closed_loop_eps {float(mx):.0f}")
print(f"RESULT ws_b_closed_loop_eps {float(mx_b):.0f}")
print(f"RESULT ws_ack_p99_deferred_ms {ad:.3f}")
print(f"RESULT ws_ack_p99_inline_ms {ai:.3f}")
print(f"RESULT ws_ack_p99_reduction_pct {100*(1-ad/ai):.1f}")
print(f"RESULT ws_first_delivery_p99_deferred_ms {fd:.3f}")
print(f"RESULT ws_first_delivery_p99_inline_ms {fi:.3f}")
print(f"RESULT ws_idle_kib_per_connection {d['kib_per_connection']:.2f}")
PY
