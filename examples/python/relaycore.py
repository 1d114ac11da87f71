"""relaycore from Python: a small binding of its C API (relaycore.h) with ctypes alone.

    lib = relaycore.load()                      # or load("/path/to/librelaycore_c.so")
    relay = relaycore.Relay(lib, "events.db")   # ":memory:" keeps events in memory
    accepted, message = relay.submit(lib.sign_event(secret, 1, int(time.time()), "hi"))
    for event in relay.query({"kinds": [1], "limit": 10}): ...
    sub = relay.subscribe({"kinds": [1]}, on_event=print)
    ...
    sub.close(); relay.close()

Events are dicts going out and JSON text (or dicts) going in. Failures raise RelaycoreError
with the C status and message. Subscription and submit_async callbacks run on the relay's
callback thread ("rc-callback"); ctypes takes the GIL for them.
"""

import ctypes
import ctypes.util
import json
import os
import threading

OK, INVALID_ARGUMENT, ERROR, CLOSED, WRONG_THREAD = range(5)

# Relay(sqlite_synchronous=...): every commit synced to disk (the default), or not (a power loss
# can lose the latest commits).
SYNCHRONOUS_FULL, SYNCHRONOUS_NORMAL = 1, 2
# Relay(event_cache_entries=EVENT_CACHE_OFF): no event cache (0 is the default, as for every
# option).
EVENT_CACHE_OFF = ctypes.c_size_t(-1).value


class RelaycoreError(Exception):
    """A call that did not return RELAYCORE_OK."""

    def __init__(self, status, message):
        super().__init__(f"{message} ({_STATUS_NAMES.get(status, status)})")
        self.status = status
        self.message = message


_STATUS_NAMES = {
    OK: "RELAYCORE_OK",
    INVALID_ARGUMENT: "RELAYCORE_INVALID_ARGUMENT",
    ERROR: "RELAYCORE_ERROR",
    CLOSED: "RELAYCORE_CLOSED",
    WRONG_THREAD: "RELAYCORE_WRONG_THREAD",
}


class _Options(ctypes.Structure):
    # The layout of relaycore_options; struct_size tells the library which fields these are.
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("database_path", ctypes.c_char_p),
        ("audit_log_path", ctypes.c_char_p),
        ("max_outbound_bytes", ctypes.c_size_t),
        ("reader_threads", ctypes.c_size_t),
        ("verify_threads", ctypes.c_size_t),
        ("max_limit", ctypes.c_size_t),
        ("max_subscriptions", ctypes.c_size_t),
        ("commit_delay_micros", ctypes.c_size_t),
        ("max_write_batch", ctypes.c_size_t),
        ("sqlite_synchronous", ctypes.c_int),
        ("sqlite_cache_kib", ctypes.c_size_t),
        ("event_cache_entries", ctypes.c_size_t),
    ]


_OK_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
_QUERY_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)
_EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_EOSE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_CLOSED_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)

_P = ctypes.c_void_p
_STR_OUT = ctypes.POINTER(ctypes.c_void_p)
_SIGNATURES = {
    "relaycore_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    "relaycore_last_error": (ctypes.c_char_p, []),
    "relaycore_free": (None, [_P]),
    "relaycore_version": (ctypes.c_char_p, []),
    "relaycore_relay_open": (ctypes.c_int, [ctypes.POINTER(_Options), ctypes.POINTER(_P)]),
    "relaycore_relay_close": (ctypes.c_int, [_P]),
    "relaycore_relay_free": (None, [_P]),
    "relaycore_submit": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), _STR_OUT],
    ),
    "relaycore_submit_async": (ctypes.c_int, [_P, ctypes.c_char_p, _OK_FN, _P]),
    "relaycore_query": (ctypes.c_int, [_P, ctypes.c_char_p, _QUERY_FN, _P]),
    "relaycore_count": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64)]),
    "relaycore_subscribe": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, _EVENT_FN, _EOSE_FN, _CLOSED_FN, _P, ctypes.POINTER(_P)],
    ),
    "relaycore_unsubscribe": (ctypes.c_int, [_P]),
    "relaycore_subscription_free": (None, [_P]),
    "relaycore_server_start": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.c_uint16, ctypes.POINTER(_P)],
    ),
    "relaycore_server_port": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_uint16)]),
    "relaycore_server_stop": (ctypes.c_int, [_P]),
    "relaycore_server_free": (None, [_P]),
    "relaycore_stats_json": (ctypes.c_int, [_P, _STR_OUT]),
    "relaycore_info_document": (ctypes.c_int, [_P, _STR_OUT]),
    "relaycore_sign_event": (
        ctypes.c_int,
        [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_int64, ctypes.c_char_p, ctypes.c_char_p,
         _STR_OUT],
    ),
    "relaycore_public_key": (ctypes.c_int, [ctypes.c_char_p, _STR_OUT]),
}


def _text(value):
    return value if isinstance(value, (str, bytes)) else json.dumps(value)


def _bytes(value):
    value = _text(value)
    return value.encode() if isinstance(value, str) else value


class Library:
    """The loaded C library, with argument types set and errors raised."""

    def __init__(self, path):
        # CDLL releases the GIL during each call, so the callback thread can take it meanwhile.
        self.c = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self.c, name)
            fn.restype = restype
            fn.argtypes = argtypes

    def check(self, status):
        if status != OK:
            raise RelaycoreError(status, self.c.relaycore_last_error().decode())

    def take_string(self, pointer):
        """The text of a string the library returned, which is then freed."""
        try:
            return ctypes.string_at(pointer).decode()
        finally:
            self.c.relaycore_free(pointer)

    def version(self):
        return self.c.relaycore_version().decode()

    def sign_event(self, secret_hex, kind, created_at, content="", tags=None):
        """A signed event's JSON text."""
        out = ctypes.c_void_p()
        tags_json = None if tags is None else _bytes(tags)
        self.check(self.c.relaycore_sign_event(secret_hex.encode(), kind, created_at,
                                               content.encode(), tags_json, ctypes.byref(out)))
        return self.take_string(out)

    def public_key(self, secret_hex):
        out = ctypes.c_void_p()
        self.check(self.c.relaycore_public_key(secret_hex.encode(), ctypes.byref(out)))
        return self.take_string(out)


def load(path=None):
    """Loads librelaycore_c: `path`, else $RELAYCORE_C_LIBRARY, else the system's search."""
    path = path or os.environ.get("RELAYCORE_C_LIBRARY") or ctypes.util.find_library("relaycore_c")
    if not path:
        raise OSError("librelaycore_c not found: pass its path or set RELAYCORE_C_LIBRARY")
    return Library(path)


class Subscription:
    def __init__(self, lib, handle, callbacks):
        self._lib = lib
        self._handle = handle
        self._callbacks = callbacks  # the C function pointers live as long as the handle

    def close(self):
        """Ends the subscription; no callback of it starts after this returns."""
        if self._handle is not None:
            self._lib.c.relaycore_subscription_free(self._handle)
            self._handle = None
            self._callbacks = None


class Server:
    def __init__(self, lib, handle):
        self._lib = lib
        self._handle = handle
        port = ctypes.c_uint16()
        lib.check(lib.c.relaycore_server_port(handle, ctypes.byref(port)))
        self.port = port.value

    def stop(self):
        if self._handle is not None:
            self._lib.c.relaycore_server_free(self._handle)
            self._handle = None


class Relay:
    """An open relay. Close it (or use `with`) to drain it and free it."""

    def __init__(self, lib, database_path, audit_log_path=None, **limits):
        self._lib = lib
        options = _Options(struct_size=ctypes.sizeof(_Options),
                           database_path=database_path.encode(),
                           audit_log_path=audit_log_path.encode() if audit_log_path else None,
                           **limits)
        handle = ctypes.c_void_p()
        lib.check(lib.c.relaycore_relay_open(ctypes.byref(options), ctypes.byref(handle)))
        self._handle = handle
        self._pending = {}  # submit_async callbacks not yet called, by id()
        self._pending_lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Drains the relay (every accepted event stored and answered) and frees it. Its
        subscriptions and servers end with it; later calls raise RelaycoreError(CLOSED)."""
        if self._handle is not None:
            self._lib.c.relaycore_relay_free(self._handle)
            self._handle = None

    def _h(self):
        if self._handle is None:
            raise RelaycoreError(CLOSED, "error: relay is closed")
        return self._handle

    def submit(self, event):
        """Submits an event and waits for its OK: (accepted, message)."""
        accepted = ctypes.c_int()
        message = ctypes.c_void_p()
        self._lib.check(self._lib.c.relaycore_submit(self._h(), _bytes(event),
                                                     ctypes.byref(accepted),
                                                     ctypes.byref(message)))
        return bool(accepted.value), self._lib.take_string(message)

    def submit_async(self, event, done):
        """Submits an event; done(event_id, accepted, message) runs on the callback thread."""
        def on_ok(_user, event_id, accepted, message):
            with self._pending_lock:
                self._pending.pop(id(callback), None)
            done(event_id.decode(), bool(accepted), message.decode())

        callback = _OK_FN(on_ok)
        with self._pending_lock:
            self._pending[id(callback)] = callback
        try:
            self._lib.check(self._lib.c.relaycore_submit_async(self._h(), _bytes(event),
                                                               callback, None))
        except RelaycoreError:
            with self._pending_lock:
                self._pending.pop(id(callback), None)
            raise

    def query(self, filters):
        """The stored events matching the filters (a dict, a list of them, or JSON text)."""
        events = []

        def visit(_user, event_json):
            events.append(json.loads(event_json))
            return 0

        self._lib.check(self._lib.c.relaycore_query(self._h(), _bytes(filters),
                                                    _QUERY_FN(visit), None))
        return events

    def count(self, filters):
        n = ctypes.c_uint64()
        self._lib.check(self._lib.c.relaycore_count(self._h(), _bytes(filters), ctypes.byref(n)))
        return n.value

    def subscribe(self, filters, on_event, on_eose=None, on_closed=None):
        """History then live events to on_event(dict); on_eose() between; on_closed(reason) if
        the relay ends it."""
        callbacks = (
            _EVENT_FN(lambda _user, event_json: on_event(json.loads(event_json))),
            _EOSE_FN(lambda _user: on_eose()) if on_eose else ctypes.cast(None, _EOSE_FN),
            _CLOSED_FN(lambda _user, reason: on_closed(reason.decode()))
            if on_closed else ctypes.cast(None, _CLOSED_FN),
        )
        handle = ctypes.c_void_p()
        self._lib.check(self._lib.c.relaycore_subscribe(self._h(), _bytes(filters),
                                                        *callbacks, None, ctypes.byref(handle)))
        return Subscription(self._lib, handle, callbacks)

    def serve(self, host="127.0.0.1", port=0):
        """Serves the relay over WebSocket; the Server's port is the one bound."""
        handle = ctypes.c_void_p()
        self._lib.check(self._lib.c.relaycore_server_start(self._h(), host.encode(), port,
                                                           ctypes.byref(handle)))
        return Server(self._lib, handle)

    def stats(self):
        out = ctypes.c_void_p()
        self._lib.check(self._lib.c.relaycore_stats_json(self._h(), ctypes.byref(out)))
        return json.loads(self._lib.take_string(out))

    def info_document(self):
        out = ctypes.c_void_p()
        self._lib.check(self._lib.c.relaycore_info_document(self._h(), ctypes.byref(out)))
        return json.loads(self._lib.take_string(out))
