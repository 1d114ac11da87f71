#!/usr/bin/env python3
"""A Python program with its own Nostr relay, through relaycore's C API and ctypes alone: it
opens a relay, serves it on ws://127.0.0.1:PORT, publishes a signed note, queries it back,
subscribes, publishes a second note and prints it as it arrives live.

    $ python3 example.py [--lib PATH/librelaycore_c.so] [--db PATH]

Without --lib, $RELAYCORE_C_LIBRARY or the system's library search finds librelaycore_c.
Without --db, the events go to a temporary directory, removed at exit. Exits 0 when every
expected event arrived, 1 otherwise.
"""

import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relaycore  # noqa: E402

# A demo key. A real program keeps its user's key somewhere safe.
SECRET = "5c0c523f52a5b6fad39ed2403092df8cebc36318b39383bca6c00808626fab3a"
TIMEOUT = 10


def fail(what):
    print(f"example.py: {what}", file=sys.stderr)
    return 1


def run(lib, relay):
    server = relay.serve("127.0.0.1", 0)
    print(f"serving ws://127.0.0.1:{server.port}")
    pubkey = lib.public_key(SECRET)
    mine = {"authors": [pubkey], "kinds": [1]}

    note = lib.sign_event(SECRET, 1, int(time.time()), "hello from Python", [["t", "relaycore"]])
    accepted, message = relay.submit(note)
    print(f"published {note}\n  -> OK {accepted} {message!r}")
    if not accepted:
        return fail("the note was refused")

    # Bad input is an exception, never a crash.
    try:
        relay.submit("not an event")
        return fail("a bad event was taken")
    except relaycore.RelaycoreError as e:
        print(f"bad input refused: {e}")

    found = relay.query(mine)
    for event in found:
        print(f"query: {event['content']!r} id {event['id']}")
    if [e["content"] for e in found] != ["hello from Python"]:
        return fail(f"the query found {found}")
    print(f"count: {relay.count([mine, {'kinds': [7]}])}")

    # Subscription callbacks run on the relay's callback thread: hand over through Events.
    eose = threading.Event()
    live = threading.Event()
    seen = []

    def on_event(event):
        seen.append(event)
        print(f"subscription: {event['content']!r} id {event['id']}")
        if eose.is_set() and event["content"] == "a second note, delivered live":
            live.set()

    def on_eose():
        print("subscription: end of stored events, now live")
        eose.set()

    sub = relay.subscribe(mine, on_event, on_eose=on_eose,
                          on_closed=lambda reason: print(f"subscription closed: {reason}"))
    try:
        if not eose.wait(TIMEOUT):
            return fail("no end of stored events")
        second = lib.sign_event(SECRET, 1, int(time.time()), "a second note, delivered live")
        done = threading.Event()
        relay.submit_async(second, lambda event_id, ok, msg: (
            print(f"async OK {event_id} {ok} {msg!r}"), done.set()))
        if not done.wait(TIMEOUT):
            return fail("the second note got no OK")
        if not live.wait(TIMEOUT):
            return fail("the second note did not arrive live")
    finally:
        sub.close()
        server.stop()

    stats = relay.stats()
    print(f"stats: {stats['events_stored']} events stored")
    if stats["events_stored"] != 2:
        return fail(f"expected 2 stored events, stats say {stats['events_stored']}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", help="path of librelaycore_c")
    parser.add_argument("--db", help="SQLite file for the events (default: temporary)")
    args = parser.parse_args()

    lib = relaycore.load(args.lib)
    with tempfile.TemporaryDirectory(prefix="relaycore-python-") as tmp:
        db = args.db or os.path.join(tmp, "events.db")
        print(f"relaycore {lib.version()}, events in {db}")
        with relaycore.Relay(lib, db, verify_threads=1, reader_threads=1) as relay:
            status = run(lib, relay)
    print("done" if status == 0 else "failed")
    return status


if __name__ == "__main__":
    sys.exit(main())
