#!/usr/bin/env python3
"""The summary of benchmarks/run_isolation.sh: reads the JSON files it left in WORK and prints
the figures, PASS/FAIL per goal and RESULT lines.

    isolation_summary.py WORK SCENARIO...
"""
import glob
import json
import os
import sys

REQ_GOAL_MS = 50
OK_GOAL_MS = 20
# What the relay's defaults let one slow reader hold: Options::max_outbound_bytes (4 MiB) and,
# for each of its Limits::max_subscriptions (20) parked REQs, one history chunk (256 KiB of
# JSON, pipeline/history_reader.cpp). For context only: the SQLite page cache grows too.
CAPS_MIB = 4 + 20 * 0.25


def load(path):
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def lat(d):
    return (f"p50 {d['p50']:7.2f}  p99 {d['p99']:7.2f}  p999 {d['p999']:7.2f}  "
            f"max {d['max']:7.2f} ms  (n={d['count']})")


def ack_buckets(path):
    """The relay's ack latency histogram in a /metrics snapshot: [(bound_s, cumulative)]."""
    out = []
    for line in open(path):
        if line.startswith("relaycore_ack_latency_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            out.append((float("inf") if bound == "+Inf" else float(bound), int(line.split()[-1])))
    return out


def ack_p99_ms(before, after):
    """The bucket bound (ms) at or below which 99% of the acks between two snapshots lie."""
    b, a = ack_buckets(before), ack_buckets(after)
    total = a[-1][1] - b[-1][1]
    for (bound, n_after), (_, n_before) in zip(a, b):
        if total and n_after - n_before >= 0.99 * total:
            return bound * 1000
    return float("nan")


def verdict(ok):
    return "PASS" if ok else "FAIL"


def report(name, title, probe_key, goals, work):
    """Prints one attack's figures; returns its RESULT lines and whether every goal held."""
    base = load(f"{work}/{name}.base.json")
    probe = load(f"{work}/{name}.probe.json")
    relay = load(f"{work}/{name}.relay.json")
    attack_lines = open(f"{work}/{name}.attack.json").read().strip().splitlines()
    atk = json.loads(attack_lines[-1])
    print(f"({name}) {title}")
    lines, ok_all = [], True
    if name == "a":
        refused = atk["closed_rate_limited"]
        print(f"    attacker: {atk['reqs']} REQs, {refused} refused rate-limited "
              f"({atk['first_closed'][:90]}); read nothing for {atk['hold_seconds']} s, then got "
              f"{atk['events']} events ({atk['bytes'] / 2**20:.1f} MiB), {atk['eose']} EOSE; "
              f"end: {atk['end']}")
        # The attacker's connection: the sockets with bytes queued (client Recv-Q, relay Send-Q).
        if os.path.exists(f"{work}/a.ss"):
            for row in open(f"{work}/a.ss").read().splitlines():
                f = row.split()
                if len(f) >= 4 and max(int(f[0]), int(f[1])) >= 64 * 1024:
                    print(f"    2 s in, socket {f[2]} -> {f[3]}: Recv-Q {int(f[0]) // 1024} KiB, "
                          f"Send-Q {int(f[1]) // 1024} KiB")
    elif name.startswith("b"):
        print(f"    attacker: {atk['rounds']} rounds of {atk['reqs_per_round']} REQs "
              f"(limit {atk['limit']}, {atk['sub_ids']} sub ids), {atk['reqs_sent']} sent; "
              f"{atk['eose']} EOSE, {atk['closed_rate_limited']} CLOSED rate-limited, "
              f"{atk['closed_other']} other CLOSED, {atk['events']} events "
              f"({atk['bytes'] / 2**20:.0f} MiB); round {lat(atk['round_ms'])}")
        if atk["first_closed"]:
            print(f"    first CLOSED: {atk['first_closed'][:120]}")
    else:
        print(f"    attacker: {atk['connections']} clients; search {lat(atk['search_ms'])}")
        print(f"              #t {lat(atk['tags_ms'])}; {atk['events']} events, "
              f"{atk['closed_rate_limited']} CLOSED rate-limited, error: {atk['error'] or '-'}")
    for key, label in (("req_ms", "REQ->EOSE (id + author)"), ("req_id_ms", "REQ by id"),
                       ("req_author_ms", "REQ author limit 10"), ("ok_ms", "EVENT->OK")):
        print(f"    {label:24} baseline    {lat(base[key])}")
        print(f"    {'':24} under attack {lat(probe[key])}")
    print(f"    relay's own EVENT->OK p99 (received to OK queued, histogram bucket bound): "
          f"baseline <= {ack_p99_ms(f'{work}/{name}.metrics0', f'{work}/{name}.metrics1'):g} ms, "
          f"under attack <= {ack_p99_ms(f'{work}/{name}.metrics1', f'{work}/{name}.metrics2'):g} ms")
    print(f"    probe timeouts {probe['timeouts']}, errors {probe['errors']}"
          f"{'; first: ' + probe['first_error'] if probe['first_error'] else ''}")
    rss = []
    with open(f"{work}/{name}.rss") as f:
        rss = [int(x) for x in f.read().split()]
    peak = max(rss + [relay["rss_before_kib"]])
    growth = peak - relay["rss_before_kib"]
    print(f"    relay RSS before {relay['rss_before_kib'] / 1024:.1f} MiB, peak during "
          f"{peak / 1024:.1f} MiB (+{growth / 1024:.1f} MiB), after "
          f"{relay['rss_after_kib'] / 1024:.1f} MiB; VmHWM {relay['hwm_kib'] / 1024:.1f} MiB; "
          f"slow-consumer disconnects {relay['slow_consumer_disconnects']:.0f}")
    if name == "a":
        start = int(open(f"{work}/a.rss_start").read())
        print(f"    relay RSS at start {start / 1024:.1f} MiB; 'before' follows a client that read "
              f"the same history ({load(f'{work}/a.warm.json')['events']} events)")
        print(f"    (the slow reader's caps: outbound 4 MiB + 20 parked REQs x 256 KiB = "
              f"{CAPS_MIB:.0f} MiB)")
    busy = sorted(relay["thread_cpu_s"].items(), key=lambda kv: -kv[1])
    # Threads the library does not name (the server's I/O and message threads) show as the
    # program's name.
    print("    relay CPU while probed: " + ", ".join(f"{k} {v:.2f} s" for k, v in busy[:6]))
    for key, goal, label in goals:
        value = probe[key]["p99"]
        ok = value <= goal
        ok_all &= ok
        print(f"    {verdict(ok)} ({name}) {label} {value:.2f} ms (goal <= {goal} ms)")
        lines.append(f"RESULT isolation_{name}_{key}_p99 {value:.3f}")
    lines.append(f"RESULT isolation_{name}_rss_growth_mib {growth / 1024:.1f}")
    lines.append(f"RESULT isolation_{name}_baseline_{probe_key}_p99 {base[probe_key]['p99']:.3f}")
    print()
    return lines, ok_all


def main():
    work, scenarios = sys.argv[1], sys.argv[2:]
    results, ok_all = [], True
    fsync = load(f"{work}/fsync.json")
    print(f"disk fdatasync (where the databases are): p50 {fsync['p50']:.2f} ms, "
          f"p99 {fsync['p99']:.2f} ms, max {fsync['max']:.2f} ms\n")
    results.append(f"RESULT isolation_fdatasync_p99_ms {fsync['p99']:.3f}")
    runs = []
    for s in scenarios:
        if s == "a":
            runs.append(("a", "slow reader: asks for ~5 KB events by the MiB, never reads",
                         "req_ms", [("req_ms", REQ_GOAL_MS, "probe REQ->EOSE p99"),
                                    ("ok_ms", OK_GOAL_MS, "probe EVENT->OK p99")]))
        elif s == "b":
            for path in sorted(glob.glob(f"{work}/b*.probe.json"), key=lambda p: len(p)):
                name = os.path.basename(path).split(".")[0]
                runs.append((name, "REQ flood: rounds of full-history REQs on one connection",
                             "req_ms", [("req_ms", REQ_GOAL_MS, "probe REQ->EOSE p99")]))
        elif s == "c":
            runs.append(("c", "heavy queries: NIP-50 search and 1,000-value #t in a loop",
                         "req_id_ms", [("req_id_ms", REQ_GOAL_MS, "probe REQ-by-id p99")]))
    for run in runs:
        lines, ok = report(run[0], run[1], run[2], run[3], work)
        results += lines
        ok_all &= ok
    for line in results:
        print(line)
    print(f"RESULT isolation_all_goals_pass {1 if ok_all else 0}")


if __name__ == "__main__":
    main()
