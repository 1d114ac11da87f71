/* Helpers of the C API tests: checks that record failures, signed events, and a collector that
 * callbacks on relaycore's threads fill while the test thread waits on it. */
#ifndef RELAYCORE_CAPI_TEST_UTIL_H
#define RELAYCORE_CAPI_TEST_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "relaycore/relaycore.h"

extern int test_failures;

void test_fail(const char* file, int line, const char* what);

/* Records a failure and goes on. */
#define CHECK(cond)                                    \
  do {                                                 \
    if (!(cond)) test_fail(__FILE__, __LINE__, #cond); \
  } while (0)

/* Records a failure and leaves the test function. */
#define REQUIRE(cond)                       \
  do {                                      \
    if (!(cond)) {                          \
      test_fail(__FILE__, __LINE__, #cond); \
      return;                               \
    }                                       \
  } while (0)

/* A call that must return `expected`; on a mismatch the last error is shown. */
#define CHECK_STATUS(call, expected) check_status((call), (expected), __FILE__, __LINE__, #call)
void check_status(relaycore_status got, relaycore_status expected, const char* file, int line,
                  const char* what);

/* True when `s` starts with `prefix`. */
int starts_with(const char* s, const char* prefix);

extern const char* const kAliceSecret;
extern const char* const kBobSecret;

/* A signed event (relaycore_free it), or NULL with a recorded failure. */
char* signed_event(const char* secret, uint32_t kind, int64_t created_at, const char* content);
int64_t now_seconds(void);

/* A relay on a memory store with one verify thread, or NULL with a recorded failure. */
relaycore_relay* open_memory_relay(void);

/* Options for a memory store with one verify thread, of this header's layout. */
void memory_options(relaycore_options* o);
/* Opens a relay with `options` and frees it at once: what relaycore_relay_open() said. */
relaycore_status open_with(const relaycore_options* options);

/* A counter of relaycore_stats_json() by name; 0 with a recorded failure when it is missing. */
uint64_t stat_value(relaycore_relay* relay, const char* name);

/* A new directory under /tmp, into `dir` (32 bytes or more); 0 with a recorded failure. */
int make_temp_dir(char* dir);
/* Removes the directory and what it holds. */
void remove_temp_dir(const char* dir);

/* The 64 hex of an event's id, into `out` (65 bytes). */
void event_id(const char* event_json, char* out);

/* What callbacks saw: event JSON in order, EOSE, a close reason, OKs and the threads used. */
typedef struct Collector {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char** items;
  size_t count;
  size_t capacity;
  int eose_at; /* items before EOSE, -1 before it */
  char* closed;
  int other_thread;    /* a callback ran off the test thread */
  int callback_thread; /* every callback ran on "rc-callback" */
  pthread_t test_thread;
} Collector;

void collector_init(Collector* c);
void collector_destroy(Collector* c);
void collector_add(Collector* c, const char* item);
/* Waits up to 10 s for `pred`, called under the lock; returns its last value. */
int collector_wait(Collector* c, int (*pred)(Collector* c, const void* arg), const void* arg);
/* Whether an item contains `needle`, under the lock. */
int collector_has(Collector* c, const char* needle);
int has_item(Collector* c, const void* needle);
int has_count(Collector* c, const void* count);
int has_eose(Collector* c, const void* unused);
int has_closed(Collector* c, const void* unused);

/* The callbacks of a subscription that fill a Collector passed as `user`. */
void collect_event(void* user, const char* event_json);
void collect_eose(void* user);
void collect_closed(void* user, const char* reason);
/* A relaycore_ok_fn that adds "<id> <accepted> <message>" to a Collector passed as `user`. */
void collect_ok(void* user, const char* id, int accepted, const char* message);

/* The cases in test_capi_live.c. */
void test_submit_async(void);
void test_subscribe(void);
void test_close_with_live_handles(void);
void test_close_from_callbacks(void);
void test_session(void);
void test_session_slow_consumer(void);
void test_session_callbacks_cannot_reenter(void);
void test_server(void);

/* The cases in test_capi_options.c. */
void test_write_path_options(void);
void test_old_options_layout(void);
void test_sqlite_synchronous(void);
void test_event_cache(void);
void test_max_write_batch(void);
void test_commit_delay(void);

#endif
