#!/usr/bin/env bash
# The socket figures: a publisher's OK latency while other connections receive fan-out, the
# fan-out's delivery latency, the maximum delivered frames/s, and the relay's CPU, system calls
# and allocations per ingested event and per delivery. Every load runs in processes of its own:
# the 1x1 probe is one relaycore-loadgen, the fan-out load another (whose subscribers are a
# third process it starts). CPU is read from /proc/<relay pid>/stat (utime + stime); system
# calls and malloc() calls are counted with perf (raw_syscalls:sys_enter and a uprobe on libc's
# malloc) in separate runs, since the uprobe slows every allocation.
#
#   benchmarks/run_socket.sh [BUILD_DIR]     (default build/ci; needs relaycore-relay and
#                                             relaycore-loadgen)
#
# Knobs (environment): RELAY (the relay binary, to compare builds), RELAY_FLAGS (its flags, e.g.
# "--commit-delay-us 700"), PROBE_EVENTS (2000), PROBE_ROUNDS (3),
# FAN_SECONDS (15), FAN_RATE (50), MAX_EVENTS (4000), OPEN_EVENTS (20000), COUNT=0 skips perf,
# PROBE_ONLY=1 stops after the probe runs (part 1), CPU_ONLY=1 runs only the CPU loads (part 3).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/ci}
RELAY=${RELAY:-$BUILD/examples/relaycore-relay}
LOADGEN=${LOADGEN:-$BUILD/benchmarks/loadgen/relaycore-loadgen}
for bin in "$RELAY" "$LOADGEN"; do
  [[ -x $bin ]] || { echo "missing $bin" >&2; exit 1; }
done
PROBE_EVENTS=${PROBE_EVENTS:-2000}
FAN_SECONDS=${FAN_SECONDS:-15}
FAN_RATE=${FAN_RATE:-50}
MAX_EVENTS=${MAX_EVENTS:-4000}
OPEN_EVENTS=${OPEN_EVENTS:-20000}
COUNT=${COUNT:-1}
PROBE_ROUNDS=${PROBE_ROUNDS:-3}
TCK=$(getconf CLK_TCK)
read -r -a FLAGS <<<"${RELAY_FLAGS:-}"

WORK=$(mktemp -d /tmp/relaycore-run-socket.XXXXXX)
source benchmarks/lib/relay.sh
trap 'stop_relay; rm -rf "$WORK"' EXIT
ulimit -n "$(ulimit -Hn)"

# The relay's CPU ticks by thread name (unnamed I/O, message and writer threads under the
# binary's name), one "name=ticks" per thread name.
thread_ticks() {
  for t in /proc/"$RELAY_PID"/task/*; do
    echo "$(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"
  done | awk '{a[$1] += $2} END {for (k in a) print k "=" a[k]}' | sort
}
# "acks-within-1ms total" from the relay's ack histogram (EVENT received to OK queued).
acks_1ms() {
  python3 - "http://127.0.0.1:$PORT/metrics" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
m = dict(l.rsplit(" ", 1) for l in text.splitlines() if l and not l.startswith("#"))
print(m['relaycore_ack_latency_seconds_bucket{le="0.001000"}'], m["relaycore_ack_latency_seconds_count"])
PY
}
# Context switches (voluntary + involuntary: sleeps and preemptions) by thread name.
thread_switches() {
  for t in /proc/"$RELAY_PID"/task/*; do
    echo "$(cat "$t/comm") $(awk '/^(non)?voluntary_ctxt_switches/{n += $2} END {print n}' "$t/status")"
  done | awk '{a[$1] += $2} END {for (k in a) print k "=" a[k]}' | sort
}
# switch_split BEFORE AFTER N: context switches per unit (N units) by thread name.
switch_split() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
def parse(text): return {k: int(v) for k, v in (l.split("=") for l in text.split())}
a, b, n = parse(sys.argv[1]), parse(sys.argv[2]), float(sys.argv[3])
parts = [(k, (b[k] - a.get(k, 0)) / n) for k in b]
print(", ".join(f"{k} {v:.2f}" for k, v in sorted(parts, key=lambda p: -p[1]) if v >= 0.01))
PY
}
# thread_split BEFORE AFTER N: microseconds of CPU per unit (N units) by thread name.
thread_split() {
  python3 - "$1" "$2" "$3" "$TCK" <<'PY'
import sys
def parse(text): return {k: int(v) for k, v in (l.split("=") for l in text.split())}
a, b, n, tck = parse(sys.argv[1]), parse(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
parts = [(k, 1e6 * (b[k] - a.get(k, 0)) / tck / n) for k in b]
print(", ".join(f"{k} {v:.0f}" for k, v in sorted(parts, key=lambda p: -p[1]) if v >= 0.5))
PY
}
us_per() { python3 -c "import sys; n=float(sys.argv[2]); print(f'{1e6*float(sys.argv[1])/$TCK/n:.1f}' if n else 'n/a')" "$@"; }
probe() { "$LOADGEN" --url "$URL" --connections 1 --window 1 --subscribers 0 --events "$PROBE_EVENTS" --threads 1 --json 2>/dev/null; }

machine_line
echo "relay: $RELAY"

if [[ ${CPU_ONLY:-0} != 1 ]]; then
# 1. The 1x1 probe with no other load, then while another publisher sends FAN_RATE events/s to
# S subscribers. S = 0 is the same load without subscribers: what the probe's OKs pay for
# sharing the writer (and its syncs) with another publisher, before any fan-out. A p99 of 2,000
# OKs moves with whatever else the two cores run, so the probe runs PROBE_ROUNDS rounds of the
# four loads in turn, and the ratios are printed for each round and as their median.
RATIOS=$WORK/ratios
for round in $(seq "$PROBE_ROUNDS"); do
  echo "round $round:"
  start_relay "${FLAGS[@]}"
  P=$(probe)
  ALONE=$(field "$P" ack_ms p99)
  echo "probe alone: OK p50 $(field "$P" ack_ms p50) ms, p99 $ALONE ms"
  stop_relay
  declare -A P99
  for S in 0 100 1000; do
    start_relay "${FLAGS[@]}"
    "$LOADGEN" --url "$URL" --connections 1 --rate "$FAN_RATE" --events $((FAN_RATE * FAN_SECONDS)) \
      --subscribers "$S" --json >"$WORK/fan.json" 2>"$WORK/fan.err" &
    FAN=$!
    T0=$(ticks)
    until grep -q publishing "$WORK/fan.err" 2>/dev/null; do
      kill -0 "$FAN" 2>/dev/null || { echo "the fan-out load failed:" >&2; cat "$WORK/fan.err" >&2; exit 1; }
      sleep 0.05
    done
    A0=$(acks_1ms)
    P=$(probe)
    A1=$(acks_1ms)
    wait "$FAN"
    T1=$(ticks)
    F=$(cat "$WORK/fan.json")
    P99[$S]=$(field "$P" ack_ms p99)
    LINE="probe with $S subscribers at $FAN_RATE ev/s: OK p50 $(field "$P" ack_ms p50) ms, p99 ${P99[$S]} ms"
    # The relay's own view of the same OKs (and the other publisher's meanwhile).
    LINE+=" ($(python3 -c "import sys; a, b, c, d = map(int, sys.argv[1:]); print(f'{100 * (c - a) / (d - b):.1f}')" \
      $A0 $A1)% acked within 1 ms inside the relay)"
    if ((S > 0)); then
      LINE+="; fan-out first delivery p99 $(field "$F" first_delivery_ms p99) ms, all delivered p99"
      LINE+=" $(field "$F" all_delivered_ms p99) ms, undelivered $(field "$F" undelivered), deliveries"
      LINE+=" $(field "$F" deliveries); relay CPU $(us_per $((T1 - T0)) "$(field "$F" deliveries)") us"
      LINE+=" per delivery (probe included)"
    fi
    echo "$LINE"
    stop_relay
  done
  echo "$ALONE ${P99[0]} ${P99[1000]}" >>"$RATIOS"
done
python3 - "$RATIOS" <<'PY'
import statistics as st, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
alone = [k / a for a, z, k in rows]
zero = [k / z for a, z, k in rows]
print("OK p99 with 1000 subscribers: " + ", ".join(f"{r:.2f}x" for r in alone) +
      f" the probe alone (median {st.median(alone):.2f}x), " + ", ".join(f"{r:.2f}x" for r in zero) +
      f" with 0 subscribers (median {st.median(zero):.2f}x); p99 with 1000 subscribers median "
      f"{st.median(k for a, z, k in rows):.3f} ms, at most {max(k for a, z, k in rows):.3f} ms")
PY
[[ ${PROBE_ONLY:-0} == 1 ]] && exit 0

# 2. Maximum delivered frames/s: closed loop publishers, 1,000 subscribers.
start_relay "${FLAGS[@]}"
T0=$(ticks)
M=$("$LOADGEN" --url "$URL" --connections 4 --window 16 --events "$MAX_EVENTS" --subscribers 1000 --json 2>/dev/null)
T1=$(ticks)
echo "max fan-out, 1000 subscribers: $(field "$M" delivered_frames_per_s) frames/s delivered," \
  "$(field "$M" events_per_s) events/s acked, undelivered $(field "$M" undelivered);" \
  "relay CPU $(us_per $((T1 - T0)) "$(field "$M" deliveries)") us per delivery"
stop_relay
fi

# 3. CPU per ingested event: open loop 4,000 events/s, and closed loop 8 x 64.
for load in "--rate 4000" "--window 64"; do
  start_relay "${FLAGS[@]}"
  T0=$(ticks)
  S0=$(thread_ticks)
  C0=$(thread_switches)
  # shellcheck disable=SC2086
  R=$("$LOADGEN" --url "$URL" --connections 8 $load --events "$OPEN_EVENTS" --subscribers 0 --json 2>/dev/null)
  T1=$(ticks)
  S1=$(thread_ticks)
  C1=$(thread_switches)
  echo "8 connections $load: $(field "$R" events_per_s) events/s, OK p50 $(field "$R" ack_ms p50)" \
    "p99 $(field "$R" ack_ms p99) ms; relay CPU $(us_per $((T1 - T0)) "$(field "$R" ok)") us per event" \
    "(by thread: $(thread_split "$S0" "$S1" "$(field "$R" ok)")); context switches per event:" \
    "$(switch_split "$C0" "$C1" "$(field "$R" ok)"); $(commit_size) events per commit"
  stop_relay
done
[[ ${CPU_ONLY:-0} == 1 ]] && exit 0

# 4. System calls and malloc() calls per delivery and per ingested event.
if [[ $COUNT == 1 ]] && command -v perf >/dev/null; then
  perf probe -q -x "$(ldd "$RELAY" | awk '/libc.so/{print $3}')" --add malloc 2>/dev/null || true
  count() {  # count LOADGEN-ARGS...: prints "syscalls mallocs ok deliveries"
    start_relay "${FLAGS[@]}"
    perf stat -x, -e raw_syscalls:sys_enter,probe_libc:malloc -p "$RELAY_PID" -o "$WORK/perf.csv" &
    local perf_pid=$!
    sleep 0.5
    local r
    r=$("$LOADGEN" --url "$URL" "$@" --json 2>/dev/null)
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    stop_relay
    echo "$(awk -F, '/sys_enter/{print $1}' "$WORK/perf.csv") $(awk -F, '/malloc/{print $1}' "$WORK/perf.csv") $(field "$r" ok) $(field "$r" deliveries)"
  }
  read -r SC MA OK DL < <(count --connections 1 --rate 50 --events 500 --subscribers 1000)
  echo "fan-out 50 ev/s x 1000 subscribers: $(python3 -c "print(f'{$SC/$DL:.2f} syscalls, {$MA/$DL:.2f} mallocs')") per delivery (whole relay, $OK events)"
  read -r SC MA OK DL < <(count --connections 8 --rate 4000 --events 20000 --subscribers 0)
  echo "open loop 4000 ev/s, no subscribers: $(python3 -c "print(f'{$SC/$OK:.2f} syscalls, {$MA/$OK:.2f} mallocs')") per event"
  perf probe -q -d probe_libc:malloc 2>/dev/null || true
fi
