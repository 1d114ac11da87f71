/* Helpers of the C API tests; see capi_test_util.h. */
#include "capi_test_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int test_failures = 0;

const char* const kAliceSecret = "0101010101010101010101010101010101010101010101010101010101010101";
const char* const kBobSecret = "0202020202020202020202020202020202020202020202020202020202020202";

void test_fail(const char* file, int line, const char* what) {
  fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
  ++test_failures;
}

void check_status(relaycore_status got, relaycore_status expected, const char* file, int line,
                  const char* what) {
  if (got == expected) return;
  fprintf(stderr, "%s:%d: FAILED: %s returned %s, not %s (last error: \"%s\")\n", file, line, what,
          relaycore_status_name(got), relaycore_status_name(expected), relaycore_last_error());
  ++test_failures;
}

int starts_with(const char* s, const char* prefix) {
  return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

int64_t now_seconds(void) { return (int64_t)time(NULL); }

char* signed_event(const char* secret, uint32_t kind, int64_t created_at, const char* content) {
  char* json = NULL;
  relaycore_status s = relaycore_sign_event(secret, kind, created_at, content, NULL, &json);
  CHECK_STATUS(s, RELAYCORE_OK);
  return json;
}

relaycore_relay* open_memory_relay(void) {
  relaycore_options options;
  relaycore_relay* relay = NULL;
  memset(&options, 0, sizeof options);
  options.struct_size = sizeof options;
  options.database_path = ":memory:";
  options.verify_threads = 1;
  CHECK_STATUS(relaycore_relay_open(&options, &relay), RELAYCORE_OK);
  return relay;
}

void collector_init(Collector* c) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->eose_at = -1;
  c->callback_thread = 1;
  c->test_thread = pthread_self();
}

void collector_destroy(Collector* c) {
  size_t i;
  for (i = 0; i < c->count; ++i) free(c->items[i]);
  free(c->items);
  free(c->closed);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
}

/* Called with the lock held. */
static void note_thread(Collector* c) {
  char name[16] = {0};
  if (!pthread_equal(pthread_self(), c->test_thread)) c->other_thread = 1;
  pthread_getname_np(pthread_self(), name, sizeof name);
  if (strcmp(name, "rc-callback") != 0) c->callback_thread = 0;
}

static char* copy(const char* s) {
  size_t n = strlen(s) + 1;
  char* out = malloc(n);
  if (out != NULL) memcpy(out, s, n);
  return out;
}

void collector_add(Collector* c, const char* item) {
  pthread_mutex_lock(&c->mu);
  note_thread(c);
  if (c->count == c->capacity) {
    size_t capacity = c->capacity == 0 ? 16 : 2 * c->capacity;
    char** items = realloc(c->items, capacity * sizeof *items);
    if (items == NULL) abort();
    c->items = items;
    c->capacity = capacity;
  }
  c->items[c->count++] = copy(item);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

int collector_wait(Collector* c, int (*pred)(Collector* c, const void* arg), const void* arg) {
  struct timespec deadline;
  int ok;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  pthread_mutex_lock(&c->mu);
  while (!(ok = pred(c, arg))) {
    if (pthread_cond_timedwait(&c->cv, &c->mu, &deadline) == ETIMEDOUT) {
      ok = pred(c, arg);
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return ok;
}

int has_item(Collector* c, const void* needle) {
  size_t i;
  for (i = 0; i < c->count; ++i) {
    if (c->items[i] != NULL && strstr(c->items[i], (const char*)needle) != NULL) return 1;
  }
  return 0;
}

int collector_has(Collector* c, const char* needle) {
  int found;
  pthread_mutex_lock(&c->mu);
  found = has_item(c, needle);
  pthread_mutex_unlock(&c->mu);
  return found;
}

int has_count(Collector* c, const void* count) { return c->count >= *(const size_t*)count; }
int has_eose(Collector* c, const void* unused) {
  (void)unused;
  return c->eose_at >= 0;
}
int has_closed(Collector* c, const void* unused) {
  (void)unused;
  return c->closed != NULL;
}

void collect_event(void* user, const char* event_json) { collector_add(user, event_json); }

void collect_eose(void* user) {
  Collector* c = user;
  pthread_mutex_lock(&c->mu);
  note_thread(c);
  c->eose_at = (int)c->count;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void collect_closed(void* user, const char* reason) {
  Collector* c = user;
  pthread_mutex_lock(&c->mu);
  note_thread(c);
  free(c->closed);
  c->closed = copy(reason);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void event_id(const char* event_json, char* out) {
  const char* p = strstr(event_json, "\"id\":\"");
  out[0] = '\0';
  if (p == NULL) return;
  memcpy(out, p + 6, 64);
  out[64] = '\0';
}

void collect_ok(void* user, const char* id, int accepted, const char* message) {
  char line[256];
  snprintf(line, sizeof line, "%s %d %s", id, accepted, message);
  collector_add(user, line);
}

void memory_options(relaycore_options* o) {
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->database_path = ":memory:";
  o->verify_threads = 1;
}

relaycore_status open_with(const relaycore_options* options) {
  relaycore_relay* relay = NULL;
  relaycore_status s = relaycore_relay_open(options, &relay);
  CHECK((s == RELAYCORE_OK) == (relay != NULL));
  relaycore_relay_free(relay);
  return s;
}

uint64_t stat_value(relaycore_relay* relay, const char* name) {
  char* json = NULL;
  char key[64];
  const char* at;
  uint64_t value = 0;
  CHECK_STATUS(relaycore_stats_json(relay, &json), RELAYCORE_OK);
  snprintf(key, sizeof key, "\"%s\":", name);
  at = json != NULL ? strstr(json, key) : NULL;
  CHECK(at != NULL);
  if (at != NULL) value = strtoull(at + strlen(key), NULL, 10);
  relaycore_free(json);
  return value;
}

int make_temp_dir(char* dir) {
  strcpy(dir, "/tmp/relaycore-capi-XXXXXX");
  if (mkdtemp(dir) != NULL) return 1;
  test_fail(__FILE__, __LINE__, "mkdtemp");
  return 0;
}

void remove_temp_dir(const char* dir) {
  char command[128];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  CHECK(system(command) == 0);
}
