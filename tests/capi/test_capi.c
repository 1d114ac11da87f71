/* The C API from C: bad input of every kind returns a status and never crashes, and the relay
 * answers submit, query and count as the C++ API does. Compiled as C99 with warnings as errors,
 * so the header is checked too. `test_capi CASE` runs one case, `test_capi` all of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "sqlite_probe.h"

static void test_version_and_errors(void) {
  CHECK(strcmp(relaycore_version(), RELAYCORE_TEST_VERSION) == 0);
  CHECK(strcmp(relaycore_status_name(RELAYCORE_OK), "RELAYCORE_OK") == 0);
  CHECK(strcmp(relaycore_status_name(RELAYCORE_CLOSED), "RELAYCORE_CLOSED") == 0);
  CHECK(strcmp(relaycore_status_name((relaycore_status)99), "RELAYCORE_UNKNOWN") == 0);
  /* The values are ABI: never renumbered. */
  CHECK(RELAYCORE_OK == 0 && RELAYCORE_INVALID_ARGUMENT == 1 && RELAYCORE_ERROR == 2 &&
        RELAYCORE_CLOSED == 3 && RELAYCORE_WRONG_THREAD == 4);
  /* A failure leaves its reason; the next success clears it. */
  CHECK_STATUS(relaycore_public_key("zz", NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK(starts_with(relaycore_last_error(), "invalid:"));
  {
    char* pubkey = NULL;
    CHECK_STATUS(relaycore_public_key(kAliceSecret, &pubkey), RELAYCORE_OK);
    CHECK(strcmp(relaycore_last_error(), "") == 0);
    CHECK(pubkey != NULL && strlen(pubkey) == 64);
    relaycore_free(pubkey);
  }
  relaycore_free(NULL);
}

static int count_visit(void* user, const char* event_json) {
  (void)event_json;
  ++*(int*)user;
  return 0;
}

static void test_null_arguments(void) {
  relaycore_relay* relay = open_memory_relay();
  relaycore_relay* out_relay = (relaycore_relay*)&relay; /* must be reset to NULL */
  relaycore_subscription* sub = (relaycore_subscription*)&relay;
  relaycore_session* session = (relaycore_session*)&relay;
  relaycore_server* server = (relaycore_server*)&relay;
  char* text = (char*)&relay;
  int accepted = 7;
  uint64_t n = 7;
  uint16_t port = 7;
  int visits = 0;
  REQUIRE(relay != NULL);

  CHECK_STATUS(relaycore_relay_open(NULL, &out_relay), RELAYCORE_INVALID_ARGUMENT);
  CHECK(out_relay == NULL);
  CHECK_STATUS(relaycore_submit(NULL, "{}", &accepted, &text), RELAYCORE_INVALID_ARGUMENT);
  CHECK(accepted == 0 && text == NULL);
  CHECK(starts_with(relaycore_last_error(), "invalid: relay is NULL"));
  CHECK_STATUS(relaycore_submit(relay, NULL, NULL, NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_submit_async(relay, NULL, NULL, NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_query(relay, "{}", NULL, NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_query(relay, NULL, count_visit, &visits), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "{}", NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(NULL, "{}", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK(n == 0);
  CHECK_STATUS(relaycore_subscribe(relay, "{}", NULL, NULL, NULL, NULL, NULL),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_subscribe(relay, NULL, NULL, NULL, NULL, NULL, &sub),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK(sub == NULL);
  CHECK_STATUS(relaycore_unsubscribe(NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_session_open(relay, NULL, NULL, NULL, NULL, NULL, &session),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK(session == NULL);
  CHECK_STATUS(relaycore_session_message(NULL, "[]", 2), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_session_drain(NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_session_close(NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_server_start(relay, NULL, 0, &server), RELAYCORE_INVALID_ARGUMENT);
  CHECK(server == NULL);
  CHECK_STATUS(relaycore_server_start(relay, "127.0.0.1", 0, NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_server_port(NULL, &port), RELAYCORE_INVALID_ARGUMENT);
  CHECK(port == 0);
  CHECK_STATUS(relaycore_server_stop(NULL), RELAYCORE_INVALID_ARGUMENT);
  text = (char*)&relay;
  CHECK_STATUS(relaycore_stats_json(NULL, &text), RELAYCORE_INVALID_ARGUMENT);
  CHECK(text == NULL);
  CHECK_STATUS(relaycore_stats_json(relay, NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_stats_prometheus(NULL, &text), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_info_document(NULL, &text), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_sign_event(NULL, 1, 0, "", NULL, &text), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 1, 0, "", NULL, NULL),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_public_key(NULL, &text), RELAYCORE_INVALID_ARGUMENT);

  /* Closing and freeing nothing is fine. */
  CHECK_STATUS(relaycore_relay_close(NULL), RELAYCORE_OK);
  relaycore_relay_free(NULL);
  relaycore_subscription_free(NULL);
  relaycore_session_free(NULL);
  relaycore_server_free(NULL);
  CHECK(visits == 0);
  relaycore_relay_free(relay);
}

static void test_bad_options(void) {
  relaycore_options o;
  /* A newer caller's struct: larger, with its extra fields left zero (default) or set. */
  struct {
    relaycore_options known;
    size_t newer_field;
  } newer;

  memory_options(&o);
  CHECK_STATUS(open_with(&o), RELAYCORE_OK);

  memory_options(&o);
  o.struct_size = 0;
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);
  CHECK(strstr(relaycore_last_error(), "struct_size") != NULL);
  o.struct_size = sizeof o - 1;
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);
  /* Garbage: refused without reading past the struct (ASan would tell). */
  o.struct_size = (size_t)-1;
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);

  memset(&newer, 0, sizeof newer);
  memory_options(&newer.known);
  newer.known.struct_size = sizeof newer;
  CHECK_STATUS(open_with(&newer.known), RELAYCORE_OK);
  newer.newer_field = 1;
  CHECK_STATUS(open_with(&newer.known), RELAYCORE_INVALID_ARGUMENT);
  CHECK(strstr(relaycore_last_error(), "does not know") != NULL);

  memory_options(&o);
  o.database_path = NULL;
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);
  o.database_path = "";
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);

  memory_options(&o);
  o.audit_log_path = "";
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);

  memory_options(&o);
  o.reader_threads = 100000;
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);
  CHECK(strstr(relaycore_last_error(), "reader_threads") != NULL);
  memory_options(&o);
  o.verify_threads = 257;
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);

  memory_options(&o);
  o.max_outbound_bytes = 100;
  CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);
  CHECK(strstr(relaycore_last_error(), "max_outbound_bytes") != NULL);

  if (sizeof(size_t) > 4) {
    memory_options(&o);
    o.max_limit = (size_t)UINT32_MAX + 1;
    CHECK_STATUS(open_with(&o), RELAYCORE_INVALID_ARGUMENT);
  }

  /* A database that cannot be created fails to open; it is not bad input. */
  memory_options(&o);
  o.database_path = "/nonexistent-relaycore-dir/sub/events.db";
  CHECK_STATUS(open_with(&o), RELAYCORE_ERROR);
  CHECK(starts_with(relaycore_last_error(), "error:"));
}

static void test_bad_json(void) {
  relaycore_relay* relay = open_memory_relay();
  char* event = signed_event(kAliceSecret, 1, now_seconds(), "hello");
  char* forged = NULL;
  char* message = (char*)&relay;
  char* text = NULL;
  int accepted = 7;
  uint64_t n = 7;
  REQUIRE(relay != NULL && event != NULL);

  CHECK_STATUS(relaycore_submit(relay, "not json", &accepted, &message),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK(accepted == 0 && message == NULL);
  CHECK(starts_with(relaycore_last_error(), "invalid:"));
  CHECK_STATUS(relaycore_submit(relay, "{\"kind\":1}", NULL, NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_submit(relay, "", NULL, NULL), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_submit_async(relay, "[", NULL, NULL), RELAYCORE_INVALID_ARGUMENT);

  /* Well-formed but forged: the relay refuses it, which is an answer, not a bad argument. */
  forged = malloc(strlen(event) + 1);
  REQUIRE(forged != NULL);
  strcpy(forged, event);
  *strstr(forged, "hello") = 'j';
  CHECK_STATUS(relaycore_submit(relay, forged, &accepted, &message), RELAYCORE_OK);
  CHECK(accepted == 0);
  CHECK(starts_with(message, "invalid:"));
  relaycore_free(message);

  /* Filters: an object, an array of objects, nothing else. */
  CHECK_STATUS(relaycore_count(relay, "{", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK(starts_with(relaycore_last_error(), "invalid:"));
  CHECK_STATUS(relaycore_count(relay, "[]", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "[1]", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "\"x\"", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "{\"kinds\":\"x\"}", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "[{\"kinds\":[1]}] x", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "[{}],[{}]", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "{\"kinds\":[1]}, {\"kinds\":[2]}", &n),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_count(relay, "{\"unknown\":1}", &n), RELAYCORE_INVALID_ARGUMENT);
  CHECK(n == 0);
  CHECK_STATUS(relaycore_count(relay, " [ {\"kinds\":[1]} , {\"kinds\":[2]} ] ", &n), RELAYCORE_OK);

  /* Signing input. */
  CHECK_STATUS(relaycore_sign_event("xyz", 1, 0, "", NULL, &text), RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 70000, 0, "", NULL, &text),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 1, 0, "", "{}", &text),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 1, 0, "", "[[1]]", &text),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 1, 0, "", "[\"e\"]", &text),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 1, 0, "", "[[\"e\"", &text),
               RELAYCORE_INVALID_ARGUMENT);
  CHECK(text == NULL);

  free(forged);
  relaycore_free(event);
  relaycore_relay_free(relay);
}

static void test_sign_event(void) {
  char* event = NULL;
  char* pubkey = NULL;
  char* expected = NULL;
  CHECK_STATUS(relaycore_public_key(kAliceSecret, &pubkey), RELAYCORE_OK);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 7, 1700000000, "+ \"quoted\"",
                                    "[[\"e\",\"abc\"],[\"t\",\"nostr\",\"x\"]]", &event),
               RELAYCORE_OK);
  REQUIRE(event != NULL && pubkey != NULL);
  expected = malloc(strlen(pubkey) + 16);
  REQUIRE(expected != NULL);
  sprintf(expected, "\"pubkey\":\"%s\"", pubkey);
  CHECK(strstr(event, expected) != NULL);
  CHECK(strstr(event, "\"created_at\":1700000000,\"kind\":7,") != NULL);
  CHECK(strstr(event, "\"tags\":[[\"e\",\"abc\"],[\"t\",\"nostr\",\"x\"]]") != NULL);
  CHECK(strstr(event, "\"content\":\"+ \\\"quoted\\\"\"") != NULL);
  /* NULL content and tags are "" and []. */
  relaycore_free(event);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 1, 1, NULL, NULL, &event), RELAYCORE_OK);
  CHECK(event != NULL && strstr(event, "\"tags\":[],\"content\":\"\"") != NULL);
  /* The widest kind, 65535, is signed as it is. */
  relaycore_free(event);
  CHECK_STATUS(relaycore_sign_event(kAliceSecret, 65535, 1, NULL, NULL, &event), RELAYCORE_OK);
  CHECK(event != NULL && strstr(event, "\"kind\":65535,") != NULL);
  free(expected);
  relaycore_free(event);
  relaycore_free(pubkey);
}

typedef struct Visits {
  char* events[8];
  int count;
  int stop_after;
} Visits;

static int record_visit(void* user, const char* event_json) {
  Visits* v = user;
  if (v->count < 8) {
    v->events[v->count] = malloc(strlen(event_json) + 1);
    if (v->events[v->count] != NULL) strcpy(v->events[v->count], event_json);
  }
  ++v->count;
  return v->stop_after != 0 && v->count >= v->stop_after;
}

static void visits_free(Visits* v) {
  int i;
  for (i = 0; i < 8 && i < v->count; ++i) free(v->events[i]);
  memset(v, 0, sizeof *v);
}

static void test_submit_query_count(void) {
  relaycore_relay* relay = open_memory_relay();
  const int64_t t = now_seconds() - 100;
  char* notes[3];
  char* reaction = signed_event(kBobSecret, 7, t + 5, "+");
  char* message = NULL;
  int accepted = 0;
  uint64_t n = 0;
  Visits v;
  int i;
  REQUIRE(relay != NULL && reaction != NULL);
  memset(&v, 0, sizeof v);
  for (i = 0; i < 3; ++i) {
    char content[16];
    sprintf(content, "note %d", i);
    notes[i] = signed_event(kAliceSecret, 1, t + i, content);
    REQUIRE(notes[i] != NULL);
    CHECK_STATUS(relaycore_submit(relay, notes[i], &accepted, &message), RELAYCORE_OK);
    CHECK(accepted == 1 && message != NULL && strcmp(message, "") == 0);
    relaycore_free(message);
  }
  CHECK_STATUS(relaycore_submit(relay, reaction, &accepted, NULL), RELAYCORE_OK);
  CHECK(accepted == 1);
  /* The same event again is a duplicate: OK true (NIP-01), with the prefix. */
  CHECK_STATUS(relaycore_submit(relay, notes[0], &accepted, &message), RELAYCORE_OK);
  CHECK(accepted == 1 && starts_with(message, "duplicate:"));
  relaycore_free(message);

  /* Newest first, limit applied. */
  CHECK_STATUS(relaycore_query(relay, "{\"kinds\":[1],\"limit\":2}", record_visit, &v),
               RELAYCORE_OK);
  CHECK(v.count == 2);
  if (v.count == 2) {
    CHECK(strcmp(v.events[0], notes[2]) == 0);
    CHECK(strcmp(v.events[1], notes[1]) == 0);
  }
  visits_free(&v);
  /* The visitor stops the query. */
  v.stop_after = 1;
  CHECK_STATUS(relaycore_query(relay, "[{\"kinds\":[1]},{\"kinds\":[7]}]", record_visit, &v),
               RELAYCORE_OK);
  CHECK(v.count == 1);
  visits_free(&v);

  CHECK_STATUS(relaycore_count(relay, "{\"kinds\":[1]}", &n), RELAYCORE_OK);
  CHECK(n == 3);
  CHECK_STATUS(relaycore_count(relay, "[{\"kinds\":[1]},{\"kinds\":[7]}]", &n), RELAYCORE_OK);
  CHECK(n == 4);
  CHECK_STATUS(relaycore_count(relay, "{\"kinds\":[30000]}", &n), RELAYCORE_OK);
  CHECK(n == 0);

  for (i = 0; i < 3; ++i) relaycore_free(notes[i]);
  relaycore_free(reaction);
  relaycore_relay_free(relay);
}

static void test_documents(void) {
  relaycore_relay* relay = open_memory_relay();
  char* event = signed_event(kAliceSecret, 1, now_seconds(), "counted");
  char* text = NULL;
  REQUIRE(relay != NULL && event != NULL);
  CHECK_STATUS(relaycore_submit(relay, event, NULL, NULL), RELAYCORE_OK);

  CHECK_STATUS(relaycore_stats_json(relay, &text), RELAYCORE_OK);
  REQUIRE(text != NULL);
  CHECK(text[0] == '{' && text[strlen(text) - 1] == '}');
  CHECK(strstr(text, "\"events_stored\":1,") != NULL);
  CHECK(strstr(text, "\"ack_latency\":{\"count\":1,") != NULL);
  CHECK(strstr(text, "\"rate_limits\":{\"refused_event\":0,") != NULL);
  relaycore_free(text);

  CHECK_STATUS(relaycore_stats_prometheus(relay, &text), RELAYCORE_OK);
  CHECK(text != NULL && strstr(text, "relaycore_events_total{outcome=\"stored\"} 1\n") != NULL);
  relaycore_free(text);

  CHECK_STATUS(relaycore_info_document(relay, &text), RELAYCORE_OK);
  CHECK(text != NULL && strstr(text, "\"supported_nips\"") != NULL);
  CHECK(text != NULL && strstr(text, "\"version\":\"" RELAYCORE_TEST_VERSION "\"") != NULL);
  relaycore_free(text);
  relaycore_free(event);
  relaycore_relay_free(relay);
}

/* The events and the audit log outlive the relay in their files. */
static void test_files(void) {
  char dir[32], db[64], audit[64];
  relaycore_options o;
  relaycore_relay* relay = NULL;
  char* event = signed_event(kAliceSecret, 1, now_seconds(), "kept");
  uint64_t n = 0;
  FILE* f;
  REQUIRE(event != NULL && make_temp_dir(dir));
  sprintf(db, "%s/events.db", dir);
  sprintf(audit, "%s/audit.db", dir);
  memory_options(&o);
  o.database_path = db;
  o.audit_log_path = audit;

  CHECK_STATUS(relaycore_relay_open(&o, &relay), RELAYCORE_OK);
  CHECK_STATUS(relaycore_submit(relay, event, NULL, NULL), RELAYCORE_OK);
  relaycore_relay_free(relay);
  relay = NULL;

  CHECK_STATUS(relaycore_relay_open(&o, &relay), RELAYCORE_OK);
  CHECK_STATUS(relaycore_count(relay, "{\"kinds\":[1]}", &n), RELAYCORE_OK);
  CHECK(n == 1);
  relaycore_relay_free(relay);
  f = fopen(audit, "rb");
  CHECK(f != NULL);
  if (f != NULL) fclose(f);

  remove_temp_dir(dir);
  relaycore_free(event);
}

typedef struct Case {
  const char* name;
  void (*run)(void);
} Case;

static const Case kCases[] = {
    {"version_and_errors", test_version_and_errors},
    {"null_arguments", test_null_arguments},
    {"bad_options", test_bad_options},
    {"bad_json", test_bad_json},
    {"sign_event", test_sign_event},
    {"submit_query_count", test_submit_query_count},
    {"documents", test_documents},
    {"files", test_files},
    {"submit_async", test_submit_async},
    {"subscribe", test_subscribe},
    {"close_with_live_handles", test_close_with_live_handles},
    {"close_from_callbacks", test_close_from_callbacks},
    {"session", test_session},
    {"session_slow_consumer", test_session_slow_consumer},
    {"session_callbacks_cannot_reenter", test_session_callbacks_cannot_reenter},
    {"server", test_server},
    {"write_path_options", test_write_path_options},
    {"old_options_layout", test_old_options_layout},
    {"sqlite_synchronous", test_sqlite_synchronous},
    {"event_cache", test_event_cache},
    {"max_write_batch", test_max_write_batch},
    {"commit_delay", test_commit_delay},
};

int main(int argc, char** argv) {
  size_t i;
  int ran = 0;
  /* Before any relay opens a database: see sqlite_probe.h. */
  if (!probe_install()) {
    fprintf(stderr, "the SQLite probe could not be installed\n");
    return 2;
  }
  for (i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    if (argc > 1 && strcmp(argv[1], kCases[i].name) != 0) continue;
    printf("== %s\n", kCases[i].name);
    kCases[i].run();
    ++ran;
  }
  if (ran == 0) {
    fprintf(stderr, "no test case named %s\n", argc > 1 ? argv[1] : "");
    return 2;
  }
  if (test_failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", test_failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
