#!/usr/bin/env bash
# Compares relays on the open loop of run_socket.sh (8 connections, 4,000 events/s, a fresh
# SQLite database each run): runs each variant in turn, RUNS times over, and prints every run and
# then each variant's median, mean and range of the relay's CPU per event (utime + stime from
# /proc), the writer's and the I/O threads' shares, the OK p50 / p99 and the events per commit. On a shared VM one run
# of this load varies by 15% or more either way, so a difference of a few percent needs about ten
# alternating runs per variant to show.
#
#   benchmarks/run_cpu_ab.sh RUNS LABEL=RELAY[ FLAGS...] LABEL=RELAY[ FLAGS...] ...
#   e.g. benchmarks/run_cpu_ab.sh 10 "before=/tmp/old/examples/relaycore-relay" \
#          "after=build/ci/examples/relaycore-relay" "delay=build/ci/examples/relaycore-relay --commit-delay-us 150"
#
# Knobs (environment): LOADGEN (build/ci's relaycore-loadgen), RATE (4000), OPEN_EVENTS (20000).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:?usage: run_cpu_ab.sh RUNS LABEL=RELAY[ FLAGS] ...}
shift
(($# > 0)) || { echo "no variants given" >&2; exit 1; }
LOADGEN=${LOADGEN:-build/ci/benchmarks/loadgen/relaycore-loadgen}
[[ -x $LOADGEN ]] || { echo "missing $LOADGEN" >&2; exit 1; }
RATE=${RATE:-4000}
OPEN_EVENTS=${OPEN_EVENTS:-20000}
TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/relaycore-run-cpu-ab.XXXXXX)
source benchmarks/lib/relay.sh
trap 'stop_relay; rm -rf "$WORK"' EXIT
ulimit -n "$(ulimit -Hn)"

# CPU ticks of the relay's threads named NAME.
named_ticks() {
  for t in /proc/"$RELAY_PID"/task/*; do
    if [[ $(cat "$t/comm") == "$1" ]]; then awk '{print $14 + $15}' "$t/stat"; fi
  done | awk '{n += $1} END {print n + 0}'
}

machine_line
RESULTS=$WORK/results
for run in $(seq "$RUNS"); do
  for variant in "$@"; do
    label=${variant%%=*}
    read -r -a cmd <<<"${variant#*=}"
    RELAY=${cmd[0]}
    [[ -x $RELAY ]] || { echo "missing $RELAY" >&2; exit 1; }
    start_relay "${cmd[@]:1}"
    T0=$(ticks)
    W0=$(named_ticks rc-write)
    I0=$(named_ticks rc-ws-io)
    R=$("$LOADGEN" --url "$URL" --connections 8 --rate "$RATE" --events "$OPEN_EVENTS" \
      --subscribers 0 --json 2>/dev/null)
    T1=$(ticks)
    W1=$(named_ticks rc-write)
    I1=$(named_ticks rc-ws-io)
    OK=$(field "$R" ok)
    BATCH=$(commit_size)
    LINE=$(python3 -c "import sys; t, w, i, n, tck = map(float, sys.argv[1:6]); \
print(f'{1e6 * t / tck / n:.1f} {1e6 * w / tck / n:.1f} {1e6 * i / tck / n:.1f} ' + ' '.join(sys.argv[6:]))" \
      $((T1 - T0)) $((W1 - W0)) $((I1 - I0)) "$OK" "$TCK" "$(field "$R" ack_ms p50)" "$(field "$R" ack_ms p99)" "$BATCH")
    stop_relay
    echo "$label $LINE" >>"$RESULTS"
    read -r cpu writer io p50 p99 batch <<<"$LINE"
    echo "run $run $label: relay CPU $cpu us per event (rc-write $writer, rc-ws-io $io), OK p50 $p50 p99 $p99 ms, $batch events per commit"
  done
done
python3 - "$RESULTS" <<'PY'
import sys, statistics as st
runs = {}
for line in open(sys.argv[1]):
    label, *values = line.split()
    runs.setdefault(label, []).append([float(v) for v in values])
for label, rows in runs.items():
    cpu, writer, io, p50, p99, batch = zip(*rows)
    print(f"{label}: {len(rows)} runs, relay CPU per event median {st.median(cpu):.1f} us, mean "
          f"{st.mean(cpu):.1f}, range {min(cpu):.1f} to {max(cpu):.1f}; rc-write median "
          f"{st.median(writer):.1f} us, rc-ws-io median {st.median(io):.1f} us; OK p50 {st.median(p50):.2f} p99 {st.median(p99):.2f} ms "
          f"(medians); {st.median(batch):.2f} events per commit")
PY
