// Two Relays in one process, sharing one SQLite file as their common store and one real Redis:
// what the Redis PubSub means through the relay (echoes dropped, remote events delivered like
// local ones, history across nodes, stats while Redis is away, acks never waiting on Redis).
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "conformance/temp_dir.hpp"
#include "redis_test_util.hpp"
#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "servers/redis_server.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace relaycore::redis_test;
using relaycore::test::now;
using relaycore::test::RecordingConnection;
using relaycore::test_servers::RedisServer;

namespace {

std::unique_ptr<Relay> open_node(const std::string& db, const RedisOptions& redis,
                                 const std::string& node_id,
                                 DispatchMode dispatch = DispatchMode::kDeferred) {
  Options o;
  o.sqlite.path = db;
  o.node_id = node_id;
  o.dispatch = dispatch;
  o.pubsub = open_pubsub(redis);
  if (!o.pubsub) return nullptr;
  Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(o));
  return relay ? std::move(relay).value() : nullptr;
}

std::string event_frame(const std::string& sub, const EventPtr& e) {
  return RecordingConnection::event_frame(sub, *e);
}

// Waits until the relay's PubSub counters are exactly (published, failed). They follow the
// Redis client, which notices a dead connection on its own timers: there is no event to wait
// for, so this asks again until they match.
bool wait_pubsub_counts(const Relay& relay, std::uint64_t published, std::uint64_t failed) {
  return test::poll_until(
      [&] {
        RelayStats s = relay.stats();
        return s.pubsub_published == published && s.pubsub_publish_failed == failed;
      },
      10s);
}

}  // namespace

TEST_CASE("redis: events cross relays once and echoes are dropped and history spans nodes",
          "[redis][relay]") {
  RedisServer server;
  REQUIRE(server.running());
  conformance::TempDir dir;
  auto a = open_node(dir.file("shared.db"), fast_options(server.url(), "r1"), "node-a");
  auto b = open_node(dir.file("shared.db"), fast_options(server.url(), "r1"), "node-b");
  REQUIRE(a);
  REQUIRE(b);
  auto conn_a = std::make_shared<RecordingConnection>();
  auto conn_b = std::make_shared<RecordingConnection>();
  auto session_a = a->open_session(conn_a, {});
  auto session_b = b->open_session(conn_b, {});
  session_a->on_message(R"(["REQ","live",{"kinds":[1]}])");
  session_b->on_message(R"(["REQ","live",{"kinds":[1]}])");
  REQUIRE(conn_a->wait_count("[\"EOSE\"", 1));
  REQUIRE(conn_b->wait_count("[\"EOSE\"", 1));

  EventPtr e = test::signed_event(test::alice(), 1, now(), "from a");
  REQUIRE(a->submit(e).accepted);
  REQUIRE(conn_b->wait_event("live", *e));
  REQUIRE(conn_a->wait_event("live", *e));
  // Sentinels through Redis show that no copy is still on its way. Redis hands a subscriber
  // messages in the order they were published, and a node dispatches what it receives in that
  // order. B publishes one once it has e, so A receives it after A's own echo of e; A publishes
  // one once it has B's, so B receives it after its own echo of B's and after anything A
  // published before.
  EventPtr from_b = test::signed_event(test::bob(), 1, now(), "sentinel from b");
  REQUIRE(b->submit(from_b).accepted);
  REQUIRE(conn_a->wait_event("live", *from_b));
  EventPtr from_a = test::signed_event(test::alice(), 1, now(), "sentinel from a");
  REQUIRE(a->submit(from_a).accepted);
  REQUIRE(conn_b->wait_event("live", *from_a));
  CHECK(conn_a->count(event_frame("live", e)) == 1);
  CHECK(conn_b->count(event_frame("live", e)) == 1);
  CHECK(conn_a->count(event_frame("live", from_b)) == 1);
  CHECK(conn_b->count(event_frame("live", from_b)) == 1);
  CHECK(conn_b->count("[\"EVENT\"") == 3);
  // Each dropped its own echoes and took the other's events from Redis (counted before they
  // are dispatched).
  CHECK(a->stats().pubsub_received == 1);
  CHECK(b->stats().pubsub_received == 2);

  // B has committed nothing, yet a REQ on B finds what A stored.
  auto reader = std::make_shared<RecordingConnection>();
  auto session_r = b->open_session(reader, {});
  session_r->on_message(R"(["REQ","hist",{"authors":[")" + std::string(e->pubkey_hex()) +
                        R"("]}])");
  REQUIRE(reader->wait_count("[\"EOSE\"", 1));
  CHECK(reader->count(event_frame("hist", e)) == 1);
  // A publish is counted after it is handed over; shutdown() drains the dispatchers first.
  CHECK(a->shutdown().message() == "");
  CHECK(b->shutdown().message() == "");
  CHECK(a->stats().pubsub_published == 2);
  CHECK(b->stats().pubsub_published == 1);
}

TEST_CASE("redis: events not published while Redis is down are counted and publishing resumes",
          "[redis][relay]") {
  RedisServer server;
  REQUIRE(server.running());
  conformance::TempDir dir;
  auto a = open_node(dir.file("a.db"), fast_options(server.url(), "r2"), "node-a");
  REQUIRE(a);
  // A watcher on the channel proves what really went through Redis: publish() only queues, so
  // an event still queued when Redis dies is lost, not published. Once the watcher has the
  // latest event, every earlier one was sent too (one connection, in order).
  auto watcher = open_pubsub(fast_options(server.url(), "r2"));
  REQUIRE(watcher);
  Inbox inbox;
  REQUIRE(watcher->subscribe(inbox.handler()).ok());
  std::uint64_t up = 0;
  for (bool through = false; !through && up < 50; ++up) {
    EventPtr e = test::signed_event(test::alice(), 1, now(), "up " + std::to_string(up));
    REQUIRE(a->submit(e).accepted);
    through = inbox.wait_has(e, 1000ms);
  }
  REQUIRE(wait_pubsub_counts(*a, up, 0));
  watcher->close();

  server.kill();
  constexpr int kDown = 20;
  for (int i = 0; i < kDown; ++i) {
    REQUIRE(a->submit(test::signed_event(test::alice(), 1, now(), "down " + std::to_string(i)))
                .accepted);
  }
  // Each one is counted once, as failed: refused, or accepted and then lost with the connection.
  CHECK(wait_pubsub_counts(*a, up, kDown));

  REQUIRE(server.restart());
  // The publisher reconnects on its backoff timer: submit until one is published.
  int sent = 0;
  CHECK(test::poll_until(
      [&] {
        const std::string content = "back " + std::to_string(sent++);
        return a->submit(test::signed_event(test::alice(), 1, now(), content)).accepted &&
               a->stats().pubsub_published > up;
      },
      10s));
  CHECK(a->shutdown().message() == "");
}

// Broken by a publish that waits for Redis: the acks would wait for the resume.
TEST_CASE("redis: a hung Redis never delays acks even with inline dispatch", "[redis][relay]") {
  RedisServer server;
  REQUIRE(server.running());
  conformance::TempDir dir;
  RedisOptions redis = fast_options(server.url(), "r3");
  // Far longer than the test waits: a publish that waited on Redis would still be waiting.
  redis.timeout_ms = 3'600'000;
  auto a = open_node(dir.file("a.db"), redis, "node-a", DispatchMode::kInline);
  REQUIRE(a);
  server.pause();
  std::atomic<int> accepted{0};
  std::promise<void> done;
  std::thread publisher([&] {
    for (int i = 0; i < 20; ++i) {
      if (a->submit(test::signed_event(test::alice(), 1, now(), "hung " + std::to_string(i)))
              .accepted) {
        ++accepted;
      }
    }
    done.set_value();
  });
  // Redis stays paused until every ack is in, or until the test stops waiting for them.
  const bool acked_while_paused = done.get_future().wait_for(30s) == std::future_status::ready;
  server.resume();
  publisher.join();
  CHECK(acked_while_paused);
  CHECK(accepted.load() == 20);
  CHECK(a->shutdown().message() == "");
}
