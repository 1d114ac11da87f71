/* relaycore_options' write-path and SQLite fields: a value out of range is refused, a caller of
 * the first layout gets the defaults whatever lies past its struct, and each value set changes
 * what the relay does, as stats or the SQLite probe (sqlite_probe.h) see it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capi_test_util.h"
#include "sqlite_probe.h"

/* A SQLite database in `dir` (a fresh file per call), with one verify thread. */
static void file_options(relaycore_options* o, const char* dir, char* db, size_t db_size) {
  static int files = 0;
  snprintf(db, db_size, "%s/events-%d.db", dir, files++);
  memory_options(o);
  o->database_path = db;
}

enum { kFixtureEvents = 6 };

/* A directory of its own, options for a database in it, events of Alice's to submit, and the
 * relay the test opens with the options. */
typedef struct Fixture {
  char dir[64];
  char db[96];
  char* events[kFixtureEvents];
  relaycore_options options;
  relaycore_relay* relay;
} Fixture;

/* The directory, the options and the events ("<label> <i>"); 0 with a recorded failure. */
static int fixture_init(Fixture* f, const char* label) {
  char content[64];
  size_t i;
  memset(f, 0, sizeof *f);
  if (!make_temp_dir(f->dir)) return 0;
  file_options(&f->options, f->dir, f->db, sizeof f->db);
  for (i = 0; i < kFixtureEvents; ++i) {
    snprintf(content, sizeof content, "%s %zu", label, i);
    f->events[i] = signed_event(kAliceSecret, 1, now_seconds(), content);
  }
  return 1;
}

/* Opens the relay with the options as the test left them; 0 with a recorded failure. */
static int fixture_open(Fixture* f) {
  CHECK_STATUS(relaycore_relay_open(&f->options, &f->relay), RELAYCORE_OK);
  return f->relay != NULL;
}

static void fixture_destroy(Fixture* f) {
  size_t i;
  relaycore_relay_free(f->relay);
  for (i = 0; i < kFixtureEvents; ++i) relaycore_free(f->events[i]);
  remove_temp_dir(f->dir);
}

/* Opening with `o` is refused as bad input naming `field`. */
static void check_refused(const relaycore_options* o, const char* field, int line) {
  const relaycore_status s = open_with(o);
  if (s != RELAYCORE_INVALID_ARGUMENT || strstr(relaycore_last_error(), field) == NULL) {
    fprintf(stderr, "%s: %s, \"%s\"\n", field, relaycore_status_name(s), relaycore_last_error());
    test_fail(__FILE__, line, "refused naming the field");
  }
}

static long long monotonic_micros(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Waits up to 10 s for a counter of the relay's stats to reach `n`. */
static int wait_stat(relaycore_relay* relay, const char* name, uint64_t n) {
  const long long deadline = monotonic_micros() + 10000000;
  const struct timespec pause = {0, 1000000};
  while (stat_value(relay, name) < n) {
    if (monotonic_micros() > deadline) return 0;
    nanosleep(&pause, NULL);
  }
  return 1;
}

/* Submits `n` events so that the first is committed alone while the others queue behind it:
 * the writer is held in the first commit's WAL sync until they wait for it. Waits for every OK.
 * The writer then takes the queued ones together, as many as a commit may hold. */
static void commit_behind_held_sync(relaycore_relay* relay, char** events, size_t n) {
  Collector oks;
  size_t i;
  collector_init(&oks);
  probe_hold_next_wal_sync();
  CHECK_STATUS(relaycore_submit_async(relay, events[0], collect_ok, &oks), RELAYCORE_OK);
  CHECK(probe_wait_held());
  for (i = 1; i < n; ++i) {
    CHECK_STATUS(relaycore_submit_async(relay, events[i], collect_ok, &oks), RELAYCORE_OK);
  }
  CHECK(wait_stat(relay, "write_queue", n - 1));
  probe_release();
  CHECK(collector_wait(&oks, has_count, &n));
  for (i = 0; i < oks.count; ++i) CHECK(strstr(oks.items[i], " 1 ") != NULL);
  collector_destroy(&oks);
}

void test_write_path_options(void) {
  char dir[64], db[96], audit[96];
  relaycore_options o;
  REQUIRE(make_temp_dir(dir));

  file_options(&o, dir, db, sizeof db);
  o.commit_delay_micros = 100000;
  o.max_write_batch = 8192;
  o.sqlite_synchronous = RELAYCORE_SYNCHRONOUS_NORMAL;
  o.sqlite_cache_kib = 1;
  o.event_cache_entries = RELAYCORE_EVENT_CACHE_OFF;
  CHECK_STATUS(open_with(&o), RELAYCORE_OK);

  file_options(&o, dir, db, sizeof db);
  o.commit_delay_micros = 100001;
  /* Refused before anything is opened: neither file is created. */
  snprintf(audit, sizeof audit, "%s/audit.db", dir);
  o.audit_log_path = audit;
  check_refused(&o, "commit_delay_micros", __LINE__);
  CHECK(access(db, F_OK) != 0 && access(audit, F_OK) != 0);
  file_options(&o, dir, db, sizeof db);
  o.max_write_batch = 8193;
  check_refused(&o, "max_write_batch", __LINE__);
  file_options(&o, dir, db, sizeof db);
  o.sqlite_synchronous = (relaycore_synchronous)3;
  check_refused(&o, "sqlite_synchronous", __LINE__);
  file_options(&o, dir, db, sizeof db);
  o.sqlite_cache_kib = ((size_t)1 << 30) + 1;
  check_refused(&o, "sqlite_cache_kib", __LINE__);
  file_options(&o, dir, db, sizeof db);
  o.event_cache_entries = 100000001;
  check_refused(&o, "event_cache_entries", __LINE__);

  /* The write path is any store's; the SQLite fields cannot be honoured in memory. */
  memory_options(&o);
  o.commit_delay_micros = 1000;
  o.max_write_batch = 16;
  CHECK_STATUS(open_with(&o), RELAYCORE_OK);
  memory_options(&o);
  o.sqlite_synchronous = RELAYCORE_SYNCHRONOUS_FULL;
  check_refused(&o, "sqlite_synchronous", __LINE__);
  memory_options(&o);
  o.sqlite_cache_kib = 1024;
  check_refused(&o, "sqlite_cache_kib", __LINE__);
  memory_options(&o);
  o.event_cache_entries = RELAYCORE_EVENT_CACHE_OFF;
  check_refused(&o, "event_cache_entries", __LINE__);
  remove_temp_dir(dir);
}

/* WAL syncs made by `commits` commits of one event each, under `sync`. */
static unsigned long syncs_per_commits(relaycore_synchronous sync, size_t commits) {
  Fixture f;
  unsigned long before = 0, syncs = 0;
  size_t i;
  int accepted = 0;
  if (!fixture_init(&f, "synced")) return 0;
  f.options.sqlite_synchronous = sync;
  if (fixture_open(&f)) {
    /* The first commit starts the WAL, which syncs its header whatever the level. */
    CHECK_STATUS(relaycore_submit(f.relay, f.events[0], &accepted, NULL), RELAYCORE_OK);
    before = probe_wal_syncs();
    for (i = 1; i <= commits; ++i) {
      CHECK_STATUS(relaycore_submit(f.relay, f.events[i], &accepted, NULL), RELAYCORE_OK);
      CHECK(accepted == 1);
    }
    syncs = probe_wal_syncs() - before;
  }
  fixture_destroy(&f);
  return syncs;
}

void test_sqlite_synchronous(void) {
  const size_t commits = kFixtureEvents - 1;
  /* Full syncs the WAL at every commit; normal leaves that to the checkpoint. */
  CHECK(syncs_per_commits(RELAYCORE_SYNCHRONOUS_DEFAULT, commits) >= commits);
  CHECK(syncs_per_commits(RELAYCORE_SYNCHRONOUS_FULL, commits) >= commits);
  CHECK(syncs_per_commits(RELAYCORE_SYNCHRONOUS_NORMAL, commits) < commits);
}

static int count_visit(void* user, const char* event_json) {
  (void)event_json;
  ++*(int*)user;
  return 0;
}

/* Reads of SQLite files on this thread while the relay answers a query for the id of an event it
 * has just stored. */
static unsigned long reads_of_id_query(relaycore_relay* relay, const char* event) {
  char id[65], filter[96];
  int visits = 0;
  event_id(event, id);
  snprintf(filter, sizeof filter, "{\"ids\":[\"%s\"]}", id);
  probe_count_reads_here();
  CHECK_STATUS(relaycore_query(relay, filter, count_visit, &visits), RELAYCORE_OK);
  CHECK(visits == 1);
  return probe_reads();
}

static unsigned long reads_with_event_cache(size_t event_cache_entries) {
  Fixture f;
  unsigned long reads = 0;
  if (!fixture_init(&f, "cached")) return 0;
  f.options.event_cache_entries = event_cache_entries;
  if (fixture_open(&f)) {
    CHECK_STATUS(relaycore_submit(f.relay, f.events[0], NULL, NULL), RELAYCORE_OK);
    reads = reads_of_id_query(f.relay, f.events[0]);
  }
  fixture_destroy(&f);
  return reads;
}

void test_event_cache(void) {
  /* A stored event is cached, and a query for its id is answered without SQLite. */
  CHECK(reads_with_event_cache(0) == 0);
  CHECK(reads_with_event_cache(10) == 0);
  CHECK(reads_with_event_cache(RELAYCORE_EVENT_CACHE_OFF) > 0);
}

void test_old_options_layout(void) {
  relaycore_options o;
  unsigned long before;
  size_t i;
  Fixture f;
  REQUIRE(fixture_init(&f, "old layout"));
  /* A caller built with the first header: the fields past its struct are not read, however
   * wrong they would be, and are their defaults. */
  f.options.struct_size = offsetof(relaycore_options, commit_delay_micros);
  f.options.commit_delay_micros = 999999999;
  f.options.max_write_batch = 999999999;
  f.options.sqlite_synchronous = RELAYCORE_SYNCHRONOUS_NORMAL;
  f.options.sqlite_cache_kib = ((size_t)1 << 30) + 1;
  f.options.event_cache_entries = RELAYCORE_EVENT_CACHE_OFF;
  if (fixture_open(&f)) {
    CHECK_STATUS(relaycore_submit(f.relay, f.events[0], NULL, NULL), RELAYCORE_OK);
    before = probe_wal_syncs();
    for (i = 1; i < 4; ++i) {
      CHECK_STATUS(relaycore_submit(f.relay, f.events[i], NULL, NULL), RELAYCORE_OK);
    }
    CHECK(probe_wal_syncs() - before >= 3);              /* synchronous full */
    CHECK(reads_of_id_query(f.relay, f.events[3]) == 0); /* the event cache */
  }
  fixture_destroy(&f);

  /* In memory, the SQLite fields past its struct are not refused either. */
  memory_options(&o);
  o.struct_size = offsetof(relaycore_options, commit_delay_micros);
  o.event_cache_entries = RELAYCORE_EVENT_CACHE_OFF;
  CHECK_STATUS(open_with(&o), RELAYCORE_OK);
  /* Nothing past those bytes is read (ASan would tell). */
  {
    const size_t old_size = offsetof(relaycore_options, commit_delay_micros);
    void* old = malloc(old_size);
    REQUIRE(old != NULL);
    memory_options(&o);
    o.struct_size = old_size;
    memcpy(old, &o, old_size);
    CHECK_STATUS(open_with((const relaycore_options*)old), RELAYCORE_OK);
    free(old);
  }
  /* A size between two layouts is no layout. */
  o.struct_size = offsetof(relaycore_options, commit_delay_micros) + 1;
  check_refused(&o, "struct_size", __LINE__);
}

void test_max_write_batch(void) {
  Fixture f;
  REQUIRE(fixture_init(&f, "batched"));
  f.options.max_write_batch = 2;
  if (fixture_open(&f)) {
    /* Three events queue behind the first commit: the writer takes them two and one. */
    commit_behind_held_sync(f.relay, f.events, 4);
    CHECK(stat_value(f.relay, "write_batch_max") == 2);
  }
  fixture_destroy(&f);
}

void test_commit_delay(void) {
  const long long delay = 100000;
  long long start;
  int accepted = 0;
  Fixture f;
  REQUIRE(fixture_init(&f, "delayed"));
  f.options.commit_delay_micros = (size_t)delay;
  if (fixture_open(&f)) {
    /* Other clients write at once: a commit holds more than one event. */
    commit_behind_held_sync(f.relay, f.events, 3);
    CHECK(stat_value(f.relay, "write_batch_max") >= 2);
    /* So the next one is held open for the delay, waiting for more. */
    start = monotonic_micros();
    CHECK_STATUS(relaycore_submit(f.relay, f.events[3], &accepted, NULL), RELAYCORE_OK);
    CHECK(accepted == 1);
    CHECK(monotonic_micros() - start >= delay);
  }
  fixture_destroy(&f);
}
