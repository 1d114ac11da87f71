/* The C API's callbacks and handle lifetimes: submit_async, live subscriptions, host sessions,
 * the WebSocket server, and closing a relay under live handles or from inside its callbacks. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capi_test_util.h"

void test_submit_async(void) {
  relaycore_relay* relay = open_memory_relay();
  char* event = signed_event(kAliceSecret, 1, now_seconds(), "async");
  char id[65], expected[128];
  const size_t two = 2;
  Collector c;
  REQUIRE(relay != NULL && event != NULL);
  collector_init(&c);
  CHECK_STATUS(relaycore_submit_async(relay, event, collect_ok, &c), RELAYCORE_OK);
  CHECK_STATUS(relaycore_submit_async(relay, event, collect_ok, &c), RELAYCORE_OK);
  /* Without a callback it is fire and forget. */
  CHECK_STATUS(relaycore_submit_async(relay, event, NULL, NULL), RELAYCORE_OK);
  CHECK(collector_wait(&c, has_count, &two));
  event_id(event, id);
  snprintf(expected, sizeof expected, "%s 1 duplicate:", id);
  CHECK(collector_has(&c, expected));
  /* The other one stored it: OK true with no message. */
  snprintf(expected, sizeof expected, "%s 1 ", id);
  pthread_mutex_lock(&c.mu);
  CHECK(c.count == 2 && (strcmp(c.items[0], expected) == 0 || strcmp(c.items[1], expected) == 0));
  pthread_mutex_unlock(&c.mu);
  CHECK(c.callback_thread);
  relaycore_relay_free(relay);
  collector_destroy(&c);
  relaycore_free(event);
}

void test_subscribe(void) {
  relaycore_relay* relay = open_memory_relay();
  const int64_t t = now_seconds();
  char* old_note = signed_event(kAliceSecret, 1, t - 10, "old");
  char* live_note = signed_event(kBobSecret, 1, t, "live");
  char* reaction = signed_event(kBobSecret, 7, t, "+");
  char* late_note = signed_event(kBobSecret, 1, t, "late");
  relaycore_subscription* sub = NULL;
  relaycore_subscription* watcher = NULL;
  Collector c, w;
  const size_t two = 2;
  REQUIRE(relay != NULL && old_note && live_note && reaction && late_note);
  collector_init(&c);
  collector_init(&w);

  CHECK_STATUS(relaycore_submit(relay, old_note, NULL, NULL), RELAYCORE_OK);
  CHECK_STATUS(relaycore_subscribe(relay, "{\"kinds\":[1]}", collect_event, collect_eose,
                                   collect_closed, &c, &sub),
               RELAYCORE_OK);
  REQUIRE(sub != NULL);
  CHECK(collector_wait(&c, has_eose, NULL));
  CHECK(c.eose_at == 1);
  CHECK_STATUS(relaycore_submit(relay, reaction, NULL, NULL), RELAYCORE_OK);
  CHECK_STATUS(relaycore_submit(relay, live_note, NULL, NULL), RELAYCORE_OK);
  CHECK(collector_wait(&c, has_count, &two));
  pthread_mutex_lock(&c.mu);
  CHECK(c.count == 2);
  if (c.count == 2) {
    CHECK(strcmp(c.items[0], old_note) == 0);
    CHECK(strcmp(c.items[1], live_note) == 0);
  }
  pthread_mutex_unlock(&c.mu);
  CHECK(c.callback_thread);

  /* Unsubscribed, it gets nothing more: a later subscription sees the next event, it does not. */
  CHECK_STATUS(relaycore_unsubscribe(sub), RELAYCORE_OK);
  CHECK_STATUS(relaycore_unsubscribe(sub), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_subscribe(relay, "[{\"kinds\":[1],\"since\":0,\"limit\":0}]",
                                   collect_event, collect_eose, NULL, &w, &watcher),
               RELAYCORE_OK);
  CHECK(collector_wait(&w, has_eose, NULL));
  CHECK_STATUS(relaycore_submit(relay, late_note, NULL, NULL), RELAYCORE_OK);
  CHECK(collector_wait(&w, has_item, "\"late\""));
  CHECK(!collector_has(&c, "\"late\""));
  CHECK(c.closed == NULL);

  relaycore_subscription_free(sub);
  relaycore_subscription_free(watcher);
  relaycore_relay_free(relay);
  collector_destroy(&c);
  collector_destroy(&w);
  relaycore_free(old_note);
  relaycore_free(live_note);
  relaycore_free(reaction);
  relaycore_free(late_note);
}

static void ignore_frame(void* user, const char* frame, size_t len) {
  (void)user;
  (void)frame;
  (void)len;
}

static int count_visits(void* user, const char* event_json) {
  (void)event_json;
  ++*(int*)user;
  return 0;
}

void test_close_with_live_handles(void) {
  relaycore_relay* relay = open_memory_relay();
  char* event = signed_event(kAliceSecret, 1, now_seconds(), "too late");
  relaycore_subscription* sub = NULL;
  relaycore_subscription* other_sub = NULL;
  relaycore_session* session = NULL;
  relaycore_server* server = NULL;
  relaycore_server* other = NULL;
  char* text = NULL;
  uint64_t n = 0;
  uint16_t port = 0;
  int visits = 0;
  Collector c;
  REQUIRE(relay != NULL && event != NULL);
  collector_init(&c);
  CHECK_STATUS(
      relaycore_subscribe(relay, "{}", collect_event, collect_eose, collect_closed, &c, &sub),
      RELAYCORE_OK);
  CHECK_STATUS(relaycore_session_open(relay, ignore_frame, NULL, NULL, NULL, "10.0.0.1", &session),
               RELAYCORE_OK);
  CHECK_STATUS(relaycore_server_start(relay, "127.0.0.1", 0, &server), RELAYCORE_OK);
  REQUIRE(sub != NULL && session != NULL && server != NULL);

  CHECK_STATUS(relaycore_relay_close(relay), RELAYCORE_OK);
  CHECK_STATUS(relaycore_relay_close(relay), RELAYCORE_CLOSED);
  /* Every call on the closed relay says so. */
  CHECK_STATUS(relaycore_submit(relay, event, NULL, NULL), RELAYCORE_CLOSED);
  CHECK(strcmp(relaycore_last_error(), "error: relay is closed") == 0);
  CHECK_STATUS(relaycore_submit_async(relay, event, NULL, NULL), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_query(relay, "{}", count_visits, &visits), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_count(relay, "{}", &n), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_subscribe(relay, "{}", NULL, NULL, NULL, NULL, &other_sub),
               RELAYCORE_CLOSED);
  CHECK(other_sub == NULL);
  CHECK_STATUS(relaycore_stats_json(relay, &text), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_server_start(relay, "127.0.0.1", 0, &other), RELAYCORE_CLOSED);
  CHECK(other == NULL);
  /* So does every handle made from it; the relay stopped the server. */
  CHECK_STATUS(relaycore_session_message(session, "[\"CLOSE\",\"x\"]", 13), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_session_drain(session), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_server_port(server, &port), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_server_stop(server), RELAYCORE_CLOSED);

  /* The relay handle goes first; the others outlive it and are closed after. */
  relaycore_relay_free(relay);
  CHECK_STATUS(relaycore_unsubscribe(sub), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_session_close(session), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_session_close(session), RELAYCORE_CLOSED);
  relaycore_subscription_free(sub);
  relaycore_session_free(session);
  relaycore_server_free(server);
  CHECK(visits == 0);
  collector_destroy(&c);
  relaycore_free(event);
}

/* What a callback that closes things records. */
typedef struct Closer {
  relaycore_relay* relay;
  relaycore_subscription* sub;
  const char* event;
  Collector done;
} Closer;

/* Closes the relay from the callback thread, then finds it closed. */
static void close_relay_on_event(void* user, const char* event_json) {
  Closer* k = user;
  char line[64];
  (void)event_json;
  snprintf(line, sizeof line, "close %s", relaycore_status_name(relaycore_relay_close(k->relay)));
  collector_add(&k->done, line);
  snprintf(line, sizeof line, "submit %s",
           relaycore_status_name(relaycore_submit(k->relay, k->event, NULL, NULL)));
  collector_add(&k->done, line);
}

/* Frees its own subscription from inside its callback. */
static void free_self_on_event(void* user, const char* event_json) {
  Closer* k = user;
  (void)event_json;
  relaycore_subscription_free(k->sub);
  collector_add(&k->done, "freed");
}

static int close_relay_on_visit(void* user, const char* event_json) {
  Closer* k = user;
  (void)event_json;
  collector_add(&k->done, relaycore_status_name(relaycore_relay_close(k->relay)));
  return 0;
}

void test_close_from_callbacks(void) {
  relaycore_relay* relay = open_memory_relay();
  const int64_t t = now_seconds();
  char* first = signed_event(kAliceSecret, 1, t, "first");
  char* second = signed_event(kAliceSecret, 1, t, "second");
  char* trigger = signed_event(kAliceSecret, 2, t, "trigger");
  relaycore_subscription* closer_sub = NULL;
  Closer self, closer, visitor;
  const size_t two = 2;
  REQUIRE(relay != NULL && first != NULL && second != NULL && trigger != NULL);
  memset(&self, 0, sizeof self);
  memset(&closer, 0, sizeof closer);
  memset(&visitor, 0, sizeof visitor);
  collector_init(&self.done);
  collector_init(&closer.done);
  collector_init(&visitor.done);
  closer.relay = relay;
  closer.event = second;

  CHECK_STATUS(relaycore_subscribe(relay, "{\"kinds\":[1]}", free_self_on_event, NULL, NULL, &self,
                                   &self.sub),
               RELAYCORE_OK);
  /* The closer waits for an event of its own, sent once the self-freeing callback has run: a
     relay closed first would drop that callback's delivery. */
  CHECK_STATUS(relaycore_subscribe(relay, "{\"kinds\":[2]}", close_relay_on_event, NULL, NULL,
                                   &closer, &closer_sub),
               RELAYCORE_OK);
  CHECK_STATUS(relaycore_submit(relay, first, NULL, NULL), RELAYCORE_OK);
  CHECK(collector_wait(&self.done, has_item, "freed"));
  CHECK_STATUS(relaycore_submit(relay, trigger, NULL, NULL), RELAYCORE_OK);
  CHECK(collector_wait(&closer.done, has_count, &two));
  CHECK(collector_has(&closer.done, "close RELAYCORE_OK"));
  CHECK(collector_has(&closer.done, "submit RELAYCORE_CLOSED"));
  CHECK_STATUS(relaycore_relay_close(relay), RELAYCORE_CLOSED);
  relaycore_subscription_free(closer_sub);
  relaycore_relay_free(relay);

  /* From inside a query's visitor: the query ends there. */
  visitor.relay = open_memory_relay();
  REQUIRE(visitor.relay != NULL);
  CHECK_STATUS(relaycore_submit(visitor.relay, first, NULL, NULL), RELAYCORE_OK);
  CHECK_STATUS(relaycore_submit(visitor.relay, second, NULL, NULL), RELAYCORE_OK);
  CHECK_STATUS(relaycore_query(visitor.relay, "{}", close_relay_on_visit, &visitor), RELAYCORE_OK);
  CHECK(visitor.done.count == 1 && collector_has(&visitor.done, "RELAYCORE_OK"));
  relaycore_relay_free(visitor.relay);

  collector_destroy(&self.done);
  collector_destroy(&closer.done);
  collector_destroy(&visitor.done);
  relaycore_free(first);
  relaycore_free(second);
  relaycore_free(trigger);
}

/* A host connection: frames go to a Collector, as a socket's write queue would. */
static void collect_frame(void* user, const char* frame, size_t len) {
  char* text = malloc(len + 1);
  if (text == NULL) abort();
  memcpy(text, frame, len);
  text[len] = '\0';
  collector_add(user, text);
  free(text);
}

static size_t nothing_queued(void* user) {
  (void)user;
  return 0;
}

static relaycore_status message(relaycore_session* session, const char* frame) {
  return relaycore_session_message(session, frame, strlen(frame));
}

void test_session(void) {
  relaycore_relay* relay = open_memory_relay();
  char* event = signed_event(kAliceSecret, 1, now_seconds(), "over my own socket");
  char* late = signed_event(kBobSecret, 1, now_seconds(), "after close");
  char frame[1024], id[65], expected[128];
  relaycore_session* session = NULL;
  relaycore_subscription* watcher = NULL;
  Collector c, w;
  size_t before;
  int handled;
  REQUIRE(relay != NULL && event != NULL && late != NULL);
  collector_init(&c);
  collector_init(&w);
  event_id(event, id);
  CHECK_STATUS(relaycore_session_open(relay, collect_frame, collect_closed, nothing_queued, &c,
                                      "192.0.2.1", &session),
               RELAYCORE_OK);
  REQUIRE(session != NULL);

  snprintf(frame, sizeof frame, "[\"EVENT\",%s]", event);
  CHECK_STATUS(message(session, frame), RELAYCORE_OK);
  snprintf(expected, sizeof expected, "[\"OK\",\"%s\",true,\"\"]", id);
  CHECK(collector_wait(&c, has_item, expected));

  CHECK_STATUS(message(session, "[\"REQ\",\"mine\",{\"kinds\":[1]}]"), RELAYCORE_OK);
  CHECK(collector_wait(&c, has_item, "[\"EOSE\",\"mine\"]"));
  snprintf(frame, sizeof frame, "[\"EVENT\",\"mine\",%s]", event);
  CHECK(collector_has(&c, frame));

  /* The non-blocking form: a resend handled on this thread, answered as a duplicate. */
  snprintf(frame, sizeof frame, "[\"EVENT\",%s]", event);
  handled = -1;
  CHECK_STATUS(relaycore_session_try_message(session, frame, strlen(frame), &handled),
               RELAYCORE_OK);
  CHECK(handled == 1);
  snprintf(expected, sizeof expected, "[\"OK\",\"%s\",true,\"duplicate:", id);
  CHECK(collector_wait(&c, has_item, expected));
  CHECK_STATUS(relaycore_session_try_message(session, frame, strlen(frame), NULL),
               RELAYCORE_INVALID_ARGUMENT);

  CHECK_STATUS(message(session, "[\"COUNT\",\"n\",{\"kinds\":[1]}]"), RELAYCORE_OK);
  CHECK(collector_wait(&c, has_item, "[\"COUNT\",\"n\",{\"count\":1}]"));
  /* A bad frame is answered on the connection, not by the status. */
  CHECK_STATUS(message(session, "nonsense"), RELAYCORE_OK);
  CHECK(collector_wait(&c, has_item, "[\"NOTICE\",\"invalid:"));
  CHECK_STATUS(relaycore_session_drain(session), RELAYCORE_OK);

  CHECK_STATUS(relaycore_session_close(session), RELAYCORE_OK);
  CHECK_STATUS(relaycore_session_close(session), RELAYCORE_CLOSED);
  CHECK_STATUS(message(session, "[\"CLOSE\",\"mine\"]"), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_session_drain(session), RELAYCORE_CLOSED);

  /* Closed, its REQ is over: an in-process subscriber sees the next event, the session not. */
  pthread_mutex_lock(&c.mu);
  before = c.count;
  pthread_mutex_unlock(&c.mu);
  CHECK_STATUS(relaycore_subscribe(relay, "{\"kinds\":[1],\"limit\":0}", collect_event, NULL, NULL,
                                   &w, &watcher),
               RELAYCORE_OK);
  CHECK_STATUS(relaycore_submit(relay, late, NULL, NULL), RELAYCORE_OK);
  CHECK(collector_wait(&w, has_item, "after close"));
  pthread_mutex_lock(&c.mu);
  CHECK(c.count == before);
  pthread_mutex_unlock(&c.mu);
  CHECK(c.closed == NULL);

  relaycore_session_free(session);
  relaycore_subscription_free(watcher);
  relaycore_relay_free(relay);
  collector_destroy(&c);
  collector_destroy(&w);
  relaycore_free(event);
  relaycore_free(late);
}

static size_t a_full_queue(void* user) {
  (void)user;
  return (size_t)1 << 30;
}

/* A host whose write queue is past max_outbound_bytes is asked to close the connection. */
void test_session_slow_consumer(void) {
  relaycore_relay* relay = open_memory_relay();
  relaycore_session* session = NULL;
  Collector c;
  REQUIRE(relay != NULL);
  collector_init(&c);
  CHECK_STATUS(relaycore_session_open(relay, collect_frame, collect_closed, a_full_queue, &c,
                                      "192.0.2.2", &session),
               RELAYCORE_OK);
  REQUIRE(session != NULL);
  CHECK_STATUS(message(session, "[\"REQ\",\"all\",{}]"), RELAYCORE_OK);
  CHECK(collector_wait(&c, has_closed, NULL));
  pthread_mutex_lock(&c.mu);
  CHECK(c.count == 0);
  CHECK(c.closed != NULL && strstr(c.closed, "slow") != NULL);
  pthread_mutex_unlock(&c.mu);
  CHECK_STATUS(relaycore_session_close(session), RELAYCORE_OK);
  relaycore_session_free(session);
  relaycore_relay_free(relay);
  collector_destroy(&c);
}

/* A send callback that calls back into relaycore, which it must not. */
typedef struct Reentrant {
  relaycore_relay* relay;
  relaycore_session* session;
  const char* event;
  Collector statuses;
} Reentrant;

static void reenter(void* user, const char* frame, size_t len) {
  Reentrant* r = user;
  char line[128];
  (void)frame;
  (void)len;
  snprintf(line, sizeof line, "submit %s close %s message %s relay %s",
           relaycore_status_name(relaycore_submit(r->relay, r->event, NULL, NULL)),
           relaycore_status_name(relaycore_session_close(r->session)),
           relaycore_status_name(relaycore_session_message(r->session, "[]", 2)),
           relaycore_status_name(relaycore_relay_close(r->relay)));
  collector_add(&r->statuses, line);
}

void test_session_callbacks_cannot_reenter(void) {
  Reentrant r;
  char frame[1024];
  char* event = signed_event(kAliceSecret, 1, now_seconds(), "reentrant");
  memset(&r, 0, sizeof r);
  r.relay = open_memory_relay();
  r.event = event;
  REQUIRE(r.relay != NULL && event != NULL);
  collector_init(&r.statuses);
  CHECK_STATUS(relaycore_session_open(r.relay, reenter, NULL, NULL, &r, NULL, &r.session),
               RELAYCORE_OK);
  REQUIRE(r.session != NULL);
  snprintf(frame, sizeof frame, "[\"EVENT\",%s]", event);
  CHECK_STATUS(relaycore_session_message(r.session, frame, strlen(frame)), RELAYCORE_OK);
  CHECK(collector_wait(&r.statuses, has_item,
                       "submit RELAYCORE_WRONG_THREAD close RELAYCORE_WRONG_THREAD message "
                       "RELAYCORE_WRONG_THREAD relay RELAYCORE_WRONG_THREAD"));
  /* Nothing was closed by those calls. */
  CHECK_STATUS(relaycore_session_close(r.session), RELAYCORE_OK);
  CHECK_STATUS(relaycore_relay_close(r.relay), RELAYCORE_OK);
  relaycore_session_free(r.session);
  relaycore_relay_free(r.relay);
  collector_destroy(&r.statuses);
  relaycore_free(event);
}

/* An HTTP GET for the NIP-11 document; the response, or "" when the connection failed. */
static void http_get_info(uint16_t port, char* out, size_t size) {
  const char* request =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/nostr+json\r\n\r\n";
  struct sockaddr_in addr;
  size_t used = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  out[0] = '\0';
  if (fd < 0) return;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) == 0 &&
      write(fd, request, strlen(request)) == (ssize_t)strlen(request)) {
    ssize_t n;
    /* The server closes after the response. */
    while (used + 1 < size && (n = read(fd, out + used, size - 1 - used)) > 0) used += (size_t)n;
  }
  out[used] = '\0';
  close(fd);
}

void test_server(void) {
  relaycore_relay* relay = open_memory_relay();
  relaycore_server* server = NULL;
  relaycore_server* taken = NULL;
  relaycore_server* second = NULL;
  uint16_t port = 0, again = 0;
  char response[8192];
  REQUIRE(relay != NULL);
  CHECK_STATUS(relaycore_server_start(relay, "127.0.0.1", 0, &server), RELAYCORE_OK);
  REQUIRE(server != NULL);
  CHECK_STATUS(relaycore_server_port(server, &port), RELAYCORE_OK);
  CHECK(port != 0);
  http_get_info(port, response, sizeof response);
  CHECK(starts_with(response, "HTTP/1.1 200"));
  CHECK(strstr(response, "\"name\":\"relaycore\"") != NULL);

  /* The port is taken: an error, not bad input. */
  CHECK_STATUS(relaycore_server_start(relay, "127.0.0.1", port, &taken), RELAYCORE_ERROR);
  CHECK(taken == NULL);

  CHECK_STATUS(relaycore_server_stop(server), RELAYCORE_OK);
  CHECK_STATUS(relaycore_server_stop(server), RELAYCORE_CLOSED);
  CHECK_STATUS(relaycore_server_port(server, &again), RELAYCORE_CLOSED);
  http_get_info(port, response, sizeof response);
  CHECK(strcmp(response, "") == 0);

  /* Closing the relay stops the servers still running. */
  CHECK_STATUS(relaycore_server_start(relay, "127.0.0.1", 0, &second), RELAYCORE_OK);
  CHECK_STATUS(relaycore_server_port(second, &port), RELAYCORE_OK);
  CHECK_STATUS(relaycore_relay_close(relay), RELAYCORE_OK);
  CHECK_STATUS(relaycore_server_port(second, &again), RELAYCORE_CLOSED);
  http_get_info(port, response, sizeof response);
  CHECK(strcmp(response, "") == 0);
  relaycore_server_free(server);
  relaycore_server_free(second);
  relaycore_relay_free(relay);
}
