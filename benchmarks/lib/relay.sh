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
