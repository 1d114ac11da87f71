// Two Relays in one process, sharing one SQLite file as their common store and one real Redis:
// what the Redis PubSub means through the relay (echoes dropped, remote events delivered like
// local ones, history across nodes, stats while Redis is away, acks never waiting on Redis).
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

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
  return "[\"EVENT\",\"" + sub + "\"," + std::string(e->json()) + "]";
}

// Waits until the relay's PubSub counters are exactly (published, failed).
bool wait_pubsub_counts(const Relay& relay, std::uint64_t published, std::uint64_t failed) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    RelayStats s = relay.stats();
    if (s.pubsub_published == published && s.pubsub_publish_failed == failed) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
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
  REQUIRE(conn_b->wait_count("[\"EVENT\"", 1));
  REQUIRE(conn_a->wait_count("[\"EVENT\"", 1));
  std::this_thread::sleep_for(300ms);  // room for a duplicate to show up
  CHECK(conn_a->count(event_frame("live", e)) == 1);
  CHECK(conn_b->count(event_frame("live", e)) == 1);
  CHECK(conn_b->count("[\"EVENT\"") == 1);
  // A dropped its own echo; B took A's event from Redis and published nothing itself.
  CHECK(a->stats().pubsub_received == 0);
  CHECK(a->stats().pubsub_published == 1);
  CHECK(b->stats().pubsub_received == 1);
  CHECK(b->stats().pubsub_published == 0);

  // B has committed nothing, yet a REQ on B finds what A stored.
  auto reader = std::make_shared<RecordingConnection>();
  auto session_r = b->open_session(reader, {});
  session_r->on_message(R"(["REQ","hist",{"authors":[")" + std::string(e->pubkey_hex()) +
                        R"("]}])");
  REQUIRE(reader->wait_count("[\"EOSE\"", 1));
  CHECK(reader->count(event_frame("hist", e)) == 1);
  CHECK(a->shutdown().message() == "");
  CHECK(b->shutdown().message() == "");
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
    for (int i = 0; i < 20 && !inbox.has(e); ++i) std::this_thread::sleep_for(50ms);
    through = inbox.has(e);
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
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  int sent = 0;
  while (a->stats().pubsub_published == up && std::chrono::steady_clock::now() < deadline) {
    REQUIRE(a->submit(test::signed_event(test::alice(), 1, now(), "back " + std::to_string(sent)))
                .accepted);
    ++sent;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(a->stats().pubsub_published > up);
  CHECK(a->shutdown().message() == "");
}

TEST_CASE("redis: a hung Redis never delays acks even with inline dispatch", "[redis][relay]") {
  RedisServer server;
  REQUIRE(server.running());
  conformance::TempDir dir;
  RedisOptions redis = fast_options(server.url(), "r3");
  redis.timeout_ms = 3000;  // a publish that waited on Redis would take this long
  auto a = open_node(dir.file("a.db"), redis, "node-a", DispatchMode::kInline);
  REQUIRE(a);
  server.pause();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    REQUIRE(a->submit(test::signed_event(test::alice(), 1, now(), "hung " + std::to_string(i)))
                .accepted);
  }
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  server.resume();
  CHECK(a->shutdown().message() == "");
}
