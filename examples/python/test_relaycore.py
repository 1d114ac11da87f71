"""Tests of the ctypes binding, and through it of the C API as another language sees it: bad
input raises, a closed relay says so, handles outlive their relay.

    $ RELAYCORE_C_LIBRARY=build/src/capi/librelaycore_c.so python3 -m unittest test_relaycore
"""

import ctypes
import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relaycore  # noqa: E402

SECRET = "0101010101010101010101010101010101010101010101010101010101010101"
LIB = relaycore.load()


def note(content, kind=1, tags=None):
    return LIB.sign_event(SECRET, kind, int(time.time()), content, tags)


class RelayTest(unittest.TestCase):
    def setUp(self):
        self.relay = relaycore.Relay(LIB, ":memory:", verify_threads=1)

    def tearDown(self):
        self.relay.close()

    def assert_status(self, status, fn, *args, **kwargs):
        with self.assertRaises(relaycore.RelaycoreError) as caught:
            fn(*args, **kwargs)
        self.assertEqual(caught.exception.status, status, caught.exception.message)
        return caught.exception

    def test_bad_input_raises(self):
        e = self.assert_status(relaycore.INVALID_ARGUMENT, self.relay.submit, "{")
        self.assertTrue(e.message.startswith("invalid:"))
        self.assert_status(relaycore.INVALID_ARGUMENT, self.relay.query, '{"kinds":"x"}')
        self.assert_status(relaycore.INVALID_ARGUMENT, self.relay.count, [])
        self.assert_status(relaycore.INVALID_ARGUMENT, LIB.sign_event, "nothex", 1, 0)
        self.assert_status(relaycore.INVALID_ARGUMENT, LIB.sign_event, SECRET, 65537, 0)
        self.assert_status(relaycore.INVALID_ARGUMENT, LIB.sign_event, SECRET, 1, 0, "", {"e": 1})
        self.assert_status(relaycore.INVALID_ARGUMENT, relaycore.Relay, LIB, "")
        self.assert_status(relaycore.INVALID_ARGUMENT, relaycore.Relay, LIB, ":memory:",
                           reader_threads=10000)

    def test_options_struct_size_guards_unknown_fields(self):
        class Newer(ctypes.Structure):
            _fields_ = [("known", relaycore._Options), ("newer_field", ctypes.c_size_t)]

        newer = Newer()
        newer.known.struct_size = ctypes.sizeof(Newer)
        newer.known.database_path = b":memory:"
        newer.newer_field = 1
        handle = ctypes.c_void_p()
        status = LIB.c.relaycore_relay_open(ctypes.cast(ctypes.byref(newer),
                                                        ctypes.POINTER(relaycore._Options)),
                                            ctypes.byref(handle))
        self.assertEqual(status, relaycore.INVALID_ARGUMENT)
        self.assertIsNone(handle.value)

    def test_write_path_options(self):
        with tempfile.TemporaryDirectory() as dir:
            tuned = dict(commit_delay_micros=1000, max_write_batch=16,
                         sqlite_synchronous=relaycore.SYNCHRONOUS_NORMAL, sqlite_cache_kib=1024,
                         event_cache_entries=relaycore.EVENT_CACHE_OFF)
            with relaycore.Relay(LIB, os.path.join(dir, "events.db"), verify_threads=1,
                                 **tuned) as relay:
                self.assertEqual(relay.submit(note("tuned")), (True, ""))
                self.assertEqual(relay.count({"kinds": [1]}), 1)
            e = self.assert_status(relaycore.INVALID_ARGUMENT, relaycore.Relay, LIB,
                                   os.path.join(dir, "events.db"), commit_delay_micros=100001)
            self.assertIn("commit_delay_micros", e.message)
        e = self.assert_status(relaycore.INVALID_ARGUMENT, relaycore.Relay, LIB, ":memory:",
                               event_cache_entries=relaycore.EVENT_CACHE_OFF)
        self.assertIn("event_cache_entries", e.message)

    def test_submit_query_count(self):
        first, second = note("first"), note("second", tags=[["t", "x"]])
        self.assertEqual(self.relay.submit(first), (True, ""))
        self.assertEqual(self.relay.submit(second), (True, ""))
        accepted, message = self.relay.submit(first)
        self.assertTrue(accepted)
        self.assertTrue(message.startswith("duplicate:"))
        self.assertEqual({e["content"] for e in self.relay.query([{"kinds": [1]}])},
                         {"first", "second"})
        self.assertEqual([e["content"] for e in self.relay.query({"#t": ["x"]})], ["second"])
        self.assertEqual(self.relay.count({"kinds": [1]}), 2)
        self.assertEqual(self.relay.stats()["events_stored"], 2)
        self.assertIn("supported_nips", self.relay.info_document())

    def test_subscription_outlives_its_relay(self):
        eose = threading.Event()
        sub = self.relay.subscribe({"kinds": [1]}, lambda e: None, on_eose=eose.set)
        self.assertTrue(eose.wait(10))
        self.relay.close()
        self.assert_status(relaycore.CLOSED, self.relay.submit, note("late"))
        sub.close()
        sub.close()

    def test_server_reports_its_port(self):
        server = self.relay.serve()
        self.assertGreater(server.port, 0)
        server.stop()
        server.stop()


if __name__ == "__main__":
    unittest.main()
