# Shared by the benchmarks/run_*.sh scripts (sourced): starting and stopping relaycore-relay,
# reading figures from the load generators' one-line JSON, and the machine line every record
# starts with. The sourcing script sets RELAY (the relay binary) and WORK (a scratch directory).

RELAY_TIMEOUT_PID=
RELAY_PID=
URL=
PORT=

# The machine, the time and the load, for the record of the figures that follow.
machine_line() {
  echo "machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//')," \
       "$(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Starts the relay with the given flags, on a fresh database in WORK unless they name one with
# --db; sets URL, PORT and RELAY_PID (the relay itself, which runs under `timeout`).
start_relay() {
  local db=()
  [[ " $* " == *" --db "* ]] || db=(--db "$WORK/relay-$RANDOM.db")
  timeout 3600 "$RELAY" --listen 127.0.0.1:0 "${db[@]}" "$@" >"$WORK/relay.out" 2>&1 &
  RELAY_TIMEOUT_PID=$!
  URL=
  for _ in $(seq 100); do
    URL=$(grep -o -m1 'ws://[0-9.:]*' "$WORK/relay.out" 2>/dev/null | head -n1 || true)
    [[ -n $URL ]] && break
    sleep 0.1
  done
  [[ -n $URL ]] || { echo "relay did not start" >&2; cat "$WORK/relay.out" >&2; exit 1; }
  PORT=${URL##*:}
  RELAY_PID=$(pgrep -P "$RELAY_TIMEOUT_PID")
}

# Stops the relay started last (SIGTERM: it drains and exits); nothing when none runs.
stop_relay() {
  if [[ -n $RELAY_TIMEOUT_PID ]]; then
    kill "$RELAY_TIMEOUT_PID" 2>/dev/null || true
    wait "$RELAY_TIMEOUT_PID" 2>/dev/null || true
    RELAY_TIMEOUT_PID=
    RELAY_PID=
  fi
}

# field JSON KEY [SUBKEY]: one figure from a load generator's one-line JSON.
field() {
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=d[sys.argv[2]]
v=v[sys.argv[3]] if len(sys.argv)>3 else v
print(v)' "$@"
}

# The relay's CPU time so far, in clock ticks (utime + stime of every thread).
ticks() { awk '{print $14 + $15}' "/proc/$RELAY_PID/stat"; }

# Mean events per group commit so far, from the relay's /metrics.
commit_size() {
  python3 - "http://127.0.0.1:$PORT/metrics" <<'PY'
import sys, urllib.request
m = dict(l.split()[:2] for l in urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().splitlines()
         if l and not l.startswith("#"))
b = float(m.get("relaycore_write_batches_total", 0))
print(f"{float(m.get('relaycore_write_batch_events_total', 0)) / b:.1f}" if b else "n/a")
PY
}
