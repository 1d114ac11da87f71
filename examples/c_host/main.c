/* relaycore-c-host: a C program that embeds a Nostr relay through relaycore.h. It opens a relay
 * on a SQLite file, serves it on ws://127.0.0.1:PORT for other apps, publishes a signed note,
 * reads it back, subscribes, publishes a second note and prints it as it arrives live.
 *
 *   $ relaycore-c-host [DB_PATH]   (default: a temporary file, removed at exit)
 *
 * Exits 0 when the note came back from the query and the second one arrived live. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relaycore/relaycore.h"

/* A demo key. A real program keeps its user's key somewhere safe. */
static const char* const kSecret =
    "5c0c523f52a5b6fad39ed2403092df8cebc36318b39383bca6c00808626fab3a";

/* What the subscription has seen, for main() to wait on. Callbacks run on relaycore's callback
 * thread, so it is guarded. */
typedef struct Seen {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int eose;
  int live_note;
} Seen;

static void on_event(void* user, const char* event_json) {
  Seen* seen = user;
  printf("subscription: %s\n", event_json);
  pthread_mutex_lock(&seen->mu);
  if (seen->eose) seen->live_note = 1;
  pthread_cond_broadcast(&seen->cv);
  pthread_mutex_unlock(&seen->mu);
}

static void on_eose(void* user) {
  Seen* seen = user;
  printf("subscription: end of stored events, now live\n");
  pthread_mutex_lock(&seen->mu);
  seen->eose = 1;
  pthread_cond_broadcast(&seen->cv);
  pthread_mutex_unlock(&seen->mu);
}

static void on_closed(void* user, const char* reason) {
  (void)user;
  printf("subscription closed by the relay: %s\n", reason);
}

/* Waits up to 5 s for *flag. */
static int wait_for(Seen* seen, const int* flag) {
  struct timespec deadline;
  int set;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 5;
  pthread_mutex_lock(&seen->mu);
  while (!*flag && pthread_cond_timedwait(&seen->cv, &seen->mu, &deadline) == 0) {
  }
  set = *flag;
  pthread_mutex_unlock(&seen->mu);
  return set;
}

static int print_event(void* user, const char* event_json) {
  ++*(int*)user;
  printf("query: %s\n", event_json);
  return 0; /* non-zero would stop the query */
}

static int failed(const char* what, relaycore_status status) {
  fprintf(stderr, "relaycore-c-host: %s: %s (%s)\n", what, relaycore_status_name(status),
          relaycore_last_error());
  return 1;
}

/* Signs a note and submits it; 0 when the relay accepted it. */
static int publish(relaycore_relay* relay, const char* content) {
  char* event = NULL;
  char* message = NULL;
  int accepted = 0;
  relaycore_status s = relaycore_sign_event(kSecret, 1, (int64_t)time(NULL), content,
                                            "[[\"t\",\"relaycore\"]]", &event);
  if (s != RELAYCORE_OK) return failed("sign", s);
  s = relaycore_submit(relay, event, &accepted, &message);
  if (s != RELAYCORE_OK) {
    relaycore_free(event);
    return failed("submit", s);
  }
  printf("published %s\n  -> OK %s \"%s\"\n", event, accepted ? "true" : "false", message);
  relaycore_free(event);
  relaycore_free(message);
  return accepted ? 0 : 1;
}

static int run(relaycore_relay* relay) {
  char filter[128];
  char* pubkey = NULL;
  relaycore_server* server = NULL;
  relaycore_subscription* sub = NULL;
  uint16_t port = 0;
  int found = 0;
  int status = 1;
  Seen seen;
  relaycore_status s;

  memset(&seen, 0, sizeof seen);
  pthread_mutex_init(&seen.mu, NULL);
  pthread_cond_init(&seen.cv, NULL);

  /* Other apps on this machine can use the relay too. */
  s = relaycore_server_start(relay, "127.0.0.1", 0, &server);
  if (s != RELAYCORE_OK) {
    failed("listen", s);
    goto done;
  }
  relaycore_server_port(server, &port);
  printf("serving ws://127.0.0.1:%u\n", (unsigned)port);

  s = relaycore_public_key(kSecret, &pubkey);
  if (s != RELAYCORE_OK) {
    failed("public key", s);
    goto done;
  }
  snprintf(filter, sizeof filter, "{\"authors\":[\"%s\"],\"kinds\":[1]}", pubkey);

  if (publish(relay, "hello from C") != 0) goto done;
  s = relaycore_query(relay, filter, print_event, &found);
  if (s != RELAYCORE_OK || found != 1) {
    failed("query", s);
    goto done;
  }

  s = relaycore_subscribe(relay, filter, on_event, on_eose, on_closed, &seen, &sub);
  if (s != RELAYCORE_OK) {
    failed("subscribe", s);
    goto done;
  }
  if (!wait_for(&seen, &seen.eose)) {
    fprintf(stderr, "relaycore-c-host: no end of stored events\n");
    goto done;
  }
  if (publish(relay, "a second note, delivered live") != 0) goto done;
  if (!wait_for(&seen, &seen.live_note)) {
    fprintf(stderr, "relaycore-c-host: the second note did not arrive\n");
    goto done;
  }
  status = 0;

done:
  /* Once unsubscribe returns no callback runs, so `seen` may go. */
  relaycore_subscription_free(sub);
  relaycore_server_free(server);
  relaycore_free(pubkey);
  pthread_cond_destroy(&seen.cv);
  pthread_mutex_destroy(&seen.mu);
  return status;
}

int main(int argc, char** argv) {
  char dir[] = "/tmp/relaycore-c-host-XXXXXX";
  char path[64];
  const char* db = argc > 1 ? argv[1] : NULL;
  relaycore_options options;
  relaycore_relay* relay = NULL;
  relaycore_status s;
  int status;

  if (db == NULL) {
    if (mkdtemp(dir) == NULL) {
      perror("mkdtemp");
      return 1;
    }
    snprintf(path, sizeof path, "%s/events.db", dir);
    db = path;
  }
  printf("relaycore %s, events in %s\n", relaycore_version(), db);

  memset(&options, 0, sizeof options);
  options.struct_size = sizeof options;
  options.database_path = db;
  options.reader_threads = 1;
  s = relaycore_relay_open(&options, &relay);
  if (s != RELAYCORE_OK) return failed("open", s);

  status = run(relay);

  /* Drains the relay (every accepted event stored and answered), then frees it. */
  relaycore_relay_free(relay);
  if (db == path) {
    char file[96];
    const char* suffixes[] = {"", "-wal", "-shm"};
    size_t i;
    for (i = 0; i < 3; ++i) {
      snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
      unlink(file);
    }
    rmdir(dir);
  }
  printf(status == 0 ? "done\n" : "failed\n");
  return status;
}
