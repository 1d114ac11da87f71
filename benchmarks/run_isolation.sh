#!/usr/bin/env bash
# Isolation between clients: each attack runs from its own process against relaycore-relay (the
# SQLite default, on a temporary database) while healthy probes in another process time
# REQ->EOSE and EVENT->OK; prints PASS/FAIL per goal and RESULT lines. Every process stops by
# itself (and runs under `timeout`); only loopback addresses are used.
#   (a) slow reader: one connection sends 60 REQs for 200 events of ~5 KB each and then reads
#       nothing. Goal: probe REQ p99 <= 50 ms, OK p99 <= 20 ms; the relay's RSS is reported.
#   (b) REQ flood: one connection sends rounds of 5,000 REQs (limit 500) on 5,000 events, with
#       sub ids cycling over 20 and with all ids distinct. Goal: probe REQ p99 <= 50 ms.
#   (c) heavy queries: three clients loop over a NIP-50 search and a 1,000-value #t filter on
#       100,000 events. Goal: probe REQ-by-id p99 <= 50 ms.
# Each relay first serves the probes alone (the baseline), then under attack.
#
#   benchmarks/run_isolation.sh [BUILD_DIR]    (default build/ci; a Release or RelWithDebInfo
#                                               build of relaycore-relay and
#                                               relaycore-bench-isolation)
#
# Knobs (environment): SCENARIOS ("a b c"), PROBE_SECONDS (10), BASE_SECONDS (5),
# PROBE_CONNECTIONS (4), PROBE_INTERVAL_MS (20), A_EVENTS (1000), A_CONTENT (5000), A_REQS (60),
# A_LIMIT (200), B_EVENTS (5000), B_REQS (5000), B_LIMIT (500), B_SUB_IDS ("20 5000"),
# C_EVENTS (100000), C_CLIENTS (3), C_TAG_VALUES (1000), C_SEARCH (zzqx).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/ci}
RELAY=$BUILD/examples/relaycore-relay
BENCH=$BUILD/benchmarks/loadgen/relaycore-bench-isolation
for bin in "$RELAY" "$BENCH"; do
  [[ -x $bin ]] || { echo "missing $bin: build relaycore-relay relaycore-bench-isolation" >&2; exit 1; }
done
read -r -a SCENARIOS <<<"${SCENARIOS:-a b c}"
PROBE_SECONDS=${PROBE_SECONDS:-10}
BASE_SECONDS=${BASE_SECONDS:-5}
PROBE_CONNECTIONS=${PROBE_CONNECTIONS:-4}
PROBE_INTERVAL_MS=${PROBE_INTERVAL_MS:-20}
A_EVENTS=${A_EVENTS:-1000}
A_CONTENT=${A_CONTENT:-5000}
A_REQS=${A_REQS:-60}
A_LIMIT=${A_LIMIT:-200}
B_EVENTS=${B_EVENTS:-5000}
B_REQS=${B_REQS:-5000}
B_LIMIT=${B_LIMIT:-500}
B_SUB_IDS=${B_SUB_IDS:-20 5000}
C_EVENTS=${C_EVENTS:-100000}
C_CLIENTS=${C_CLIENTS:-3}
C_TAG_VALUES=${C_TAG_VALUES:-1000}
C_SEARCH=${C_SEARCH:-zzqx}
# The attack outlasts the probes' window; the slow reader holds past both that window and the
# relay's 10 s slow-reader deadline (Options::slow_reader_timeout_ms).
ATTACK_SECONDS=$((PROBE_SECONDS + 2))
HOLD_SECONDS=$((PROBE_SECONDS > 10 ? PROBE_SECONDS + 4 : 14))

WORK=$(mktemp -d /tmp/relaycore-run-isolation.XXXXXX)
source benchmarks/lib/relay.sh
trap 'stop_relay; rm -rf "$WORK"' EXIT

# Waits until FILE has a line WORD, while PID lives (at most 60 s).
wait_line() {
  local file=$1 word=$2 pid=$3
  for _ in $(seq 600); do
    grep -qx "$word" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "no \"$word\" from $file:" >&2
  cat "$file" >&2
  exit 1
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$RELAY_PID/status"; }

# CPU ticks per relay thread name, as JSON.
thread_ticks() {
  python3 - "$RELAY_PID" <<'PY'
import glob, json, sys
out = {}
for stat in glob.glob(f"/proc/{sys.argv[1]}/task/*/stat"):
    try:
        s = open(stat).read()
    except OSError:
        continue
    name = s[s.index("(") + 1 : s.rindex(")")]
    fields = s[s.rindex(")") + 2 :].split()
    out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])  # utime + stime
print(json.dumps(out))
PY
}

metric() {  # metric FILE NAME: the relaycore_NAME value in a /metrics snapshot
  awk -v m="relaycore_$2" '$1 == m {print $2}' "$1"
}

probe() {  # probe SECONDS OUT
  timeout $(($1 + 120)) "$BENCH" probe --url "$URL" --seconds "$1" \
    --connections "$PROBE_CONNECTIONS" --interval-ms "$PROBE_INTERVAL_MS" >"$2"
}

# attack NAME ARGS...: the probes alone (if NAME has no baseline yet), then with the attacker
# `relaycore-bench-isolation ARGS` running; writes $WORK/NAME.*.
attack() {
  local name=$1
  shift
  # /metrics before and after each probe run (the relay's own ack latency histogram), and
  # after the attack.
  curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/$name.metrics0"
  probe "$BASE_SECONDS" "$WORK/$name.base.json"
  curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/$name.metrics1"
  local before ticks_before
  before=$(rss_kib)
  ticks_before=$(thread_ticks)
  rm -f "$WORK/stop"
  # VmRSS every 100 ms until told to stop (bounded).
  (for _ in $(seq 1200); do
     [[ -f $WORK/stop ]] && break
     rss_kib || true
     sleep 0.1
   done >"$WORK/$name.rss") &
  local sampler=$!
  timeout $((ATTACK_SECONDS + 120)) "$BENCH" "$@" --url "$URL" >"$WORK/$name.attack.json" &
  local attacker=$!
  wait_line "$WORK/$name.attack.json" attacking "$attacker"
  # The sockets of the attacking connection a moment into the attack (Recv-Q, Send-Q).
  (sleep 2; ss -tnH state established "( sport = :$PORT or dport = :$PORT )" >"$WORK/$name.ss") &
  local ss_pid=$!
  probe "$PROBE_SECONDS" "$WORK/$name.probe.json"
  local ticks_probe
  ticks_probe=$(thread_ticks)
  curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/$name.metrics2"
  wait "$attacker"
  wait "$ss_pid"
  touch "$WORK/stop"
  wait "$sampler"
  curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/$name.metrics3"
  python3 - "$before" "$(rss_kib)" "$(awk '/^VmHWM/ {print $2}' "/proc/$RELAY_PID/status")" \
    "$ticks_before" "$ticks_probe" \
    "$(metric "$WORK/$name.metrics3" slow_consumer_disconnects_total)" \
    "$(metric "$WORK/$name.metrics3" frames_req_total)" "$(getconf CLK_TCK)" >"$WORK/$name.relay.json" <<'PY'
import json, sys
before, after, hwm, t0, t1, slow, reqs, hz = sys.argv[1:]
t0, t1 = json.loads(t0), json.loads(t1)
cpu = {k: (t1[k] - t0.get(k, 0)) / int(hz) for k in t1 if t1[k] - t0.get(k, 0) > 0}
print(json.dumps({"rss_before_kib": int(before), "rss_after_kib": int(after),
                  "hwm_kib": int(hwm), "thread_cpu_s": cpu,
                  "slow_consumer_disconnects": float(slow or 0), "frames_req": float(reqs or 0)}))
PY
}

machine_line
# The disk's sync latency where the databases live: with the default SqliteSync::kFull every
# group commit waits for one, so it bounds EVENT->OK from below.
python3 - "$WORK" >"$WORK/fsync.json" <<'PY'
import json, os, sys, time
path = os.path.join(sys.argv[1], "fsync.test")
fd = os.open(path, os.O_WRONLY | os.O_CREAT)
ms = []
for _ in range(200):
    os.write(fd, b"x" * 8192)
    t = time.perf_counter()
    os.fdatasync(fd)
    ms.append((time.perf_counter() - t) * 1000)
os.close(fd)
os.unlink(path)
ms.sort()
print(json.dumps({"p50": ms[len(ms) // 2], "p99": ms[int(len(ms) * 0.99) - 1], "max": ms[-1]}))
PY

for scenario in "${SCENARIOS[@]}"; do
  case $scenario in
    a)
      echo "(a) seeding $A_EVENTS events of ~$A_CONTENT B: $("$BENCH" seed --db "$WORK/a.db" \
        --events "$A_EVENTS" --content-size "$A_CONTENT" --topics 1)"
      start_relay --db "$WORK/a.db"
      rss_kib >"$WORK/a.rss_start"
      # A client that reads fetches the same history first, so the SQLite page cache and the
      # allocator are warm and the growth under attack is what the slow reader holds.
      timeout 60 "$BENCH" slow --url "$URL" --reqs 20 --limit "$A_LIMIT" --topic topic0 \
        --hold-seconds 0 --drain-seconds 20 >"$WORK/a.warm.json"
      attack a slow --reqs "$A_REQS" --limit "$A_LIMIT" --topic topic0 \
        --hold-seconds "$HOLD_SECONDS"
      stop_relay
      ;;
    b)
      echo "(b) seeding $B_EVENTS events: $("$BENCH" seed --db "$WORK/b.db" --events "$B_EVENTS")"
      start_relay --db "$WORK/b.db"
      for ids in $B_SUB_IDS; do
        attack "b$ids" flood --reqs "$B_REQS" --sub-ids "$ids" --limit "$B_LIMIT" \
          --seconds "$ATTACK_SECONDS"
      done
      stop_relay
      ;;
    c)
      echo "(c) seeding $C_EVENTS events: $("$BENCH" seed --db "$WORK/c.db" --events "$C_EVENTS" \
        --topics 2000)"
      start_relay --db "$WORK/c.db"
      attack c heavy --connections "$C_CLIENTS" --seconds "$ATTACK_SECONDS" \
        --tag-values "$C_TAG_VALUES" --search "$C_SEARCH"
      stop_relay
      ;;
    *)
      echo "unknown scenario $scenario" >&2
      exit 2
      ;;
  esac
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== summary =="
python3 benchmarks/isolation_summary.py "$WORK" "${SCENARIOS[@]}"
