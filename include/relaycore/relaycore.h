/* relaycore.h: the C API of relaycore, for programs not written in C++ (C, Python through
 * ctypes, Go, Rust, Swift...) that embed a Nostr relay. It wraps relaycore/relay.hpp: open a
 * relay, submit events, query, count and subscribe in process, feed sessions from a host's own
 * sockets, or start the bundled WebSocket server. Link relaycore::c (librelaycore_c).
 *
 * Conventions
 *
 * [Data] Events and filters cross the boundary as NIP-01 JSON text, NUL-terminated UTF-8.
 *   A filters argument is one filter object ({"kinds":[1]}) or an array of them
 *   ([{"kinds":[1]},{"authors":["..."]}]), which match as the filters of one REQ do.
 *   Kinds are 16 bits (0 to 65535) throughout relaycore; a filter naming a larger kind is
 *   refused ("invalid: ...").
 *
 * [Errors] Every function that can fail returns a relaycore_status. On any status other than
 *   RELAYCORE_OK, relaycore_last_error() returns the reason on the calling thread, with a
 *   NIP-01 prefix ("invalid: ...", "error: ..."), and out parameters are set to NULL or 0.
 *   No C++ exception ever crosses this API. NULL handles, NULL or malformed JSON, unknown
 *   option fields and bad option values return RELAYCORE_INVALID_ARGUMENT.
 *
 * [Ownership] Strings passed in are copied before the call returns. Strings passed to a
 *   callback are valid only during that call: copy what you keep. Strings returned through a
 *   char** are the caller's and are freed with relaycore_free(). Handles are released with
 *   their *_free function.
 *
 * [Closing] Each handle has a close function (relaycore_relay_close, relaycore_unsubscribe,
 *   relaycore_session_close, relaycore_server_stop) that ends what it stands for and leaves the
 *   handle valid, and a *_free function that closes it if needed and releases it. Closing is
 *   idempotent: a close function returns RELAYCORE_CLOSED when the thing had already ended
 *   (closed before, or its relay was closed), which is not a failure. Every other call on a
 *   closed handle returns RELAYCORE_CLOSED. *_free(NULL) does nothing; a handle must not be
 *   used after its *_free.
 *   Closing a relay with live subscriptions, sessions and servers is allowed: it drains the
 *   relay (every accepted event is stored and answered), then stops its servers. The other
 *   handles stay valid until freed, and their calls return RELAYCORE_CLOSED.
 *
 * [Threading] Every function may be called from any thread, concurrently, except that a handle
 *   must not be freed while another thread uses it, and a session is fed from one thread at a
 *   time. Callbacks run on relaycore threads:
 *   - subscription and submit_async callbacks on the relay's one callback thread
 *     ("rc-callback"), one at a time. They may call any function, including closing or freeing
 *     the relay, the subscription itself, or calling relaycore_submit(). A slow callback delays
 *     the others, never ingest; a subscription that falls too far behind is ended with
 *     on_closed("error: subscriber too slow ...").
 *   - query callbacks on the thread that called relaycore_query(), before it returns.
 *   - a session's send, close and queued_bytes callbacks on relaycore's pipeline threads (and on
 *     the thread feeding the session). They must not block (queue the frame and return) and
 *     must not call back into relaycore: any call on a relay, session, subscription or server
 *     handle from inside them returns RELAYCORE_WRONG_THREAD, and a *_free from inside them is
 *     carried out on a thread of its own.
 *   Once relaycore_relay_close(), relaycore_unsubscribe() or relaycore_session_close() has
 *   returned (called from outside the callback in question), none of the callbacks it ends
 *   starts again, so `user` data may be freed.
 *
 * [ABI] Stable across releases with the same major version: handles are opaque (their layout
 *   is never seen); enum values are never renumbered, only added; functions and callback
 *   signatures never change, only new ones are added; relaycore_options only grows at its
 *   end, and its struct_size field tells the library which fields the caller knows.
 */
#ifndef RELAYCORE_RELAYCORE_H
#define RELAYCORE_RELAYCORE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(RELAYCORE_C_BUILDING)
#define RELAYCORE_C_API __declspec(dllexport)
#else
#define RELAYCORE_C_API __declspec(dllimport)
#endif
#else
#define RELAYCORE_C_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* What a call did. Values are fixed forever; new ones are only added. */
typedef enum relaycore_status {
  RELAYCORE_OK = 0,
  /* A NULL where a value is required, malformed JSON, an unknown option field or a bad option
   * value. Nothing was done. */
  RELAYCORE_INVALID_ARGUMENT = 1,
  /* The operation failed (storage, I/O, a port in use, out of memory). */
  RELAYCORE_ERROR = 2,
  /* The handle, or the relay it belongs to, has been closed. */
  RELAYCORE_CLOSED = 3,
  /* Called from a session callback, where calling back into relaycore could deadlock. */
  RELAYCORE_WRONG_THREAD = 4,
  /* Not a status: keeps the type as wide as an int in every compiler, so values a newer
   * library adds are valid values of it. */
  RELAYCORE_STATUS_FORCE_INT = 0x7fffffff
} relaycore_status;

/* "RELAYCORE_OK", "RELAYCORE_INVALID_ARGUMENT", ...; "RELAYCORE_UNKNOWN" for other values. The
 * string is static. */
RELAYCORE_C_API const char* relaycore_status_name(relaycore_status status);

/* The reason for the last call on this thread that did not return RELAYCORE_OK; "" after a call
 * that did. Valid until the next relaycore call on this thread. Never NULL. */
RELAYCORE_C_API const char* relaycore_last_error(void);

/* Frees a string this API returned through a char**. NULL is ignored. */
RELAYCORE_C_API void relaycore_free(void* ptr);

/* The library version, "MAJOR.MINOR.PATCH". The string is static. */
RELAYCORE_C_API const char* relaycore_version(void);

/* ---- Opening a relay ---------------------------------------------------------------------- */

/* How durable a commit is before its OK (relaycore_options.sqlite_synchronous). */
typedef enum relaycore_synchronous {
  /* The default: RELAYCORE_SYNCHRONOUS_FULL. */
  RELAYCORE_SYNCHRONOUS_DEFAULT = 0,
  /* Survives power loss: every group commit is synced to disk before its OKs. */
  RELAYCORE_SYNCHRONOUS_FULL = 1,
  /* Survives a crash of the program but not power loss, which can lose the latest commits;
   * commits are not synced, which costs less per commit. */
  RELAYCORE_SYNCHRONOUS_NORMAL = 2,
  /* Not a value: keeps the type as wide as an int in every compiler. */
  RELAYCORE_SYNCHRONOUS_FORCE_INT = 0x7fffffff
} relaycore_synchronous;

/* relaycore_options.event_cache_entries for no event cache. Zero there means the default, as in
 * every field, so "none" needs a value of its own. */
#define RELAYCORE_EVENT_CACHE_OFF SIZE_MAX

/* What relaycore_relay_open() takes. Zero means the default for every field, so set it up as
 *     relaycore_options options;
 *     memset(&options, 0, sizeof options);
 *     options.struct_size = sizeof options;
 *     options.database_path = "events.db";
 * struct_size is how the library tells which fields the caller's header had: a caller built
 * with an older header passes that header's size and gets the default for every field added
 * since; a size that is no released layout and smaller than this one is refused; and fields past
 * the ones this library knows must be zero (a non-zero one is an option it cannot honour, so it
 * is refused rather than ignored). */
typedef struct relaycore_options {
  size_t struct_size;
  /* The SQLite database file, created if missing; ":memory:" keeps events in memory only.
   * Required. */
  const char* database_path;
  /* The tamper-evident audit log (a SQLite file, created if missing). NULL: no audit log. */
  const char* audit_log_path;
  /* A session or subscription with more than this many bytes waiting for its connection or
   * callback is closed as a slow consumer. At least 65536. Default: 4194304 (4 MiB). */
  size_t max_outbound_bytes;
  /* Threads that serve queries from storage, 1 to 256. Default: 2. */
  size_t reader_threads;
  /* Threads that check ids and signatures, 1 to 256. Default: the hardware threads less one. */
  size_t verify_threads;
  /* The largest limit a query or REQ is served with; larger ones are clamped. At most
   * 4294967295. Default: 500. */
  size_t max_limit;
  /* Most open subscriptions per session. Default: 20. */
  size_t max_subscriptions;
  /* The first layout ended here: a caller whose struct_size ends before a field below gets its
   * default. */
  /* How long a group commit is held open for more events while other clients write at the same
   * time (the last commit held more than one event), in microseconds. Every commit costs a sync
   * and a set of index pages whatever it holds, so fewer, larger commits cost less CPU and fewer
   * disk writes per event at moderate load, and those OKs come up to the delay later. A client
   * that waits for each OK before sending the next is not held. At most 100000.
   * Default: 0 (commit at once). */
  size_t commit_delay_micros;
  /* Most events in one group commit, 1 to 8192 (as many as wait for the writer at most).
   * Default: 1024. */
  size_t max_write_batch;
  /* How durable a commit is before its OK. Not with ":memory:".
   * Default: RELAYCORE_SYNCHRONOUS_FULL. */
  relaycore_synchronous sqlite_synchronous;
  /* SQLite's page cache per connection, in KiB, 1 to 1073741824. Not with ":memory:".
   * Default: 65536 (64 MiB). */
  size_t sqlite_cache_kib;
  /* Events recently stored or read, kept parsed in memory by id: a query for ids is answered
   * from it without SQLite. Each holds an event's fields and its JSON, roughly twice the JSON
   * plus a few hundred bytes. 1 to 100000000, or RELAYCORE_EVENT_CACHE_OFF for no cache. Not
   * with ":memory:". Default: 100000. */
  size_t event_cache_entries;
} relaycore_options;

typedef struct relaycore_relay relaycore_relay;

/* Opens storage (and the audit log) and starts the relay's threads. */
RELAYCORE_C_API relaycore_status relaycore_relay_open(const relaycore_options* options,
                                                      relaycore_relay** relay_out);

/* Stops taking work and drains: every accepted event is committed, audited and answered, and
 * every callback already due has run; then the relay's servers stop. Safe from inside a
 * subscription, submit_async or query callback (then that callback finishes after it). */
RELAYCORE_C_API relaycore_status relaycore_relay_close(relaycore_relay* relay);

/* Closes the relay if needed and releases the handle. */
RELAYCORE_C_API void relaycore_relay_free(relaycore_relay* relay);

/* ---- Events in and out --------------------------------------------------------------------- */

/* Ingests one event (JSON) and waits for its OK: `accepted` is 1 or 0, and `message` (may be
 * NULL) receives the OK message, "" or "<prefix>: <detail>" (free it with relaycore_free). The
 * event gets the checks of one from a client: id, signature, limits. An event that is not a
 * well-formed event object returns RELAYCORE_INVALID_ARGUMENT; a well-formed one the relay
 * refuses returns RELAYCORE_OK with accepted 0. Blocks until the event is committed. */
RELAYCORE_C_API relaycore_status relaycore_submit(relaycore_relay* relay, const char* event_json,
                                                  int* accepted, char** message);

/* The OK of an event: its id (64 hex), 1 or 0, and "" or "<prefix>: <detail>". */
typedef void (*relaycore_ok_fn)(void* user, const char* event_id, int accepted,
                                const char* message);

/* As relaycore_submit(), but returns at once; `done` (may be NULL) gets the OK on the callback
 * thread, exactly once when this returns RELAYCORE_OK and never otherwise. (If the relay is
 * closed concurrently, `done` may run on the calling thread before this returns.) */
RELAYCORE_C_API relaycore_status relaycore_submit_async(relaycore_relay* relay,
                                                        const char* event_json,
                                                        relaycore_ok_fn done, void* user);

/* One stored event of a query; return non-zero to stop the query. */
typedef int (*relaycore_query_fn)(void* user, const char* event_json);

/* Calls `visit` with each stored event matching the filters, as a REQ's history: newest first,
 * each filter's limit applied (clamped to max_limit), each event once. Blocks; `visit` runs on
 * the calling thread. Stopping early is RELAYCORE_OK. */
RELAYCORE_C_API relaycore_status relaycore_query(relaycore_relay* relay, const char* filters_json,
                                                 relaycore_query_fn visit, void* user);

/* The number of stored events matching the filters (NIP-45; limits ignored). Blocks. */
RELAYCORE_C_API relaycore_status relaycore_count(relaycore_relay* relay, const char* filters_json,
                                                 uint64_t* count);

/* ---- Live subscriptions -------------------------------------------------------------------- */

typedef struct relaycore_subscription relaycore_subscription;

/* An event of a subscription: the history first, newest first, then live events as they
 * commit, each exactly once. */
typedef void (*relaycore_event_fn)(void* user, const char* event_json);
/* Between the history and the live events. */
typedef void (*relaycore_eose_fn)(void* user);
/* Something ended, with a NIP-01 reason ("error: subscriber too slow ...") or "" for a plain
 * close. For a subscription: the relay ended it (nothing follows). For a session: the relay
 * asks the host to close the connection. */
typedef void (*relaycore_closed_fn)(void* user, const char* reason);

/* Starts a live subscription. Each callback may be NULL; all run on the callback thread, in
 * order. on_closed runs only when the relay ends the subscription, never after
 * relaycore_unsubscribe(); once the relay is closed, no callback runs any more. */
RELAYCORE_C_API relaycore_status relaycore_subscribe(relaycore_relay* relay,
                                                     const char* filters_json,
                                                     relaycore_event_fn on_event,
                                                     relaycore_eose_fn on_eose,
                                                     relaycore_closed_fn on_closed, void* user,
                                                     relaycore_subscription** subscription_out);

/* Ends the subscription: once this returns, none of its callbacks starts (from inside one of
 * them, the current one finishes). RELAYCORE_CLOSED when it had already ended or its relay was
 * closed. */
RELAYCORE_C_API relaycore_status relaycore_unsubscribe(relaycore_subscription* subscription);

/* Unsubscribes if needed and releases the handle. Allowed from inside its own callbacks. */
RELAYCORE_C_API void relaycore_subscription_free(relaycore_subscription* subscription);

/* ---- Sessions: hosts with their own sockets ------------------------------------------------- */

typedef struct relaycore_session relaycore_session;

/* One text frame for the client, `len` bytes (not NUL-terminated). Queue it and return. */
typedef void (*relaycore_send_fn)(void* user, const char* frame, size_t len);
/* Bytes the host has queued for the client and not yet written. */
typedef size_t (*relaycore_queued_bytes_fn)(void* user);

/* A session for one client connection of the host's. relaycore calls `send` with every frame
 * for the client (in order, never concurrently), `close` when the connection should be closed
 * (a slow consumer), and `queued_bytes` (may be NULL: nothing is ever queued) from any thread to
 * apply back-pressure. `remote_address` (may be NULL) is the client's address, for the rate
 * limits per address. */
RELAYCORE_C_API relaycore_status relaycore_session_open(relaycore_relay* relay,
                                                        relaycore_send_fn send,
                                                        relaycore_closed_fn close,
                                                        relaycore_queued_bytes_fn queued_bytes,
                                                        void* user, const char* remote_address,
                                                        relaycore_session** session_out);

/* One text frame from the client (EVENT, REQ, CLOSE, COUNT, AUTH). Bad frames are answered
 * through `send` (OK false, CLOSED or NOTICE), not by the status. May block while the relay's
 * ingest queue is full (back-pressure). */
RELAYCORE_C_API relaycore_status relaycore_session_message(relaycore_session* session,
                                                           const char* frame, size_t len);

/* As relaycore_session_message(), but never blocks: sets *handled_out to 1 when the frame was
 * handled, or to 0, having done nothing, when handling it might wait (a full queue, or a host
 * policy set through the C++ API); the host then passes the same frame to
 * relaycore_session_message() from a thread that may block. An EVENT's signature is checked on
 * the calling thread, which saves handing it to another: for a host's reader threads. */
RELAYCORE_C_API relaycore_status relaycore_session_try_message(relaycore_session* session,
                                                               const char* frame, size_t len,
                                                               int* handled_out);

/* The host wrote out some queued bytes: a query paused on a full connection resumes. Cheap. */
RELAYCORE_C_API relaycore_status relaycore_session_drain(relaycore_session* session);

/* The connection is gone: the session's subscriptions end, and once this returns no callback
 * of the session starts. Not concurrently with relaycore_session_message() on it. */
RELAYCORE_C_API relaycore_status relaycore_session_close(relaycore_session* session);

/* Closes the session if needed and releases the handle. */
RELAYCORE_C_API void relaycore_session_free(relaycore_session* session);

/* ---- The bundled WebSocket server ---------------------------------------------------------- */

typedef struct relaycore_server relaycore_server;

/* Serves the relay over WebSocket on `host` ("127.0.0.1" for this machine only) and `port` (0:
 * a free one, see relaycore_server_port()), with its NIP-11 document for HTTP requests that
 * accept application/nostr+json. */
RELAYCORE_C_API relaycore_status relaycore_server_start(relaycore_relay* relay, const char* host,
                                                        uint16_t port,
                                                        relaycore_server** server_out);

/* The port the server listens on. */
RELAYCORE_C_API relaycore_status relaycore_server_port(relaycore_server* server, uint16_t* port);

/* Stops accepting, closes every connection (1001, going away) and joins the server's threads. */
RELAYCORE_C_API relaycore_status relaycore_server_stop(relaycore_server* server);

/* Stops the server if needed and releases the handle. */
RELAYCORE_C_API void relaycore_server_free(relaycore_server* server);

/* ---- Documents ----------------------------------------------------------------------------- */

/* The relay's counters as a JSON object named as relaycore::RelayStats' fields, e.g.
 * {"frames_event":0,...,"events_stored":1,...,"ack_latency":{"count":1,"sum_us":80,...},...}. */
RELAYCORE_C_API relaycore_status relaycore_stats_json(relaycore_relay* relay, char** json_out);

/* The same counters in the Prometheus text format, for a /metrics endpoint. */
RELAYCORE_C_API relaycore_status relaycore_stats_prometheus(relaycore_relay* relay,
                                                            char** text_out);

/* The NIP-11 relay information document (JSON). */
RELAYCORE_C_API relaycore_status relaycore_info_document(relaycore_relay* relay, char** json_out);

/* ---- Keys and signing, for small programs that make their own events ----------------------- */

/* Builds and signs an event (BIP-340) with the secret key `secret_hex` (64 lowercase hex).
 * `kind` is 0 to 65535; it is passed wider so that a larger value from a caller is refused
 * (RELAYCORE_INVALID_ARGUMENT) instead of being cut to another kind. `tags_json` is a JSON
 * array of arrays of strings, or NULL for no tags; `content` may be NULL for "". The result is
 * the event's canonical JSON. */
RELAYCORE_C_API relaycore_status relaycore_sign_event(const char* secret_hex, uint32_t kind,
                                                      int64_t created_at, const char* content,
                                                      const char* tags_json, char** event_json_out);

/* The public key (64 hex) of a secret key. */
RELAYCORE_C_API relaycore_status relaycore_public_key(const char* secret_hex,
                                                      char** pubkey_hex_out);

#ifdef __cplusplus
}
#endif

#endif /* RELAYCORE_RELAYCORE_H */
