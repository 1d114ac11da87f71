// The Redis PubSub on its own, against a real redis-server: delivery between two instances,
// origins, strict parsing of what arrives, and what publish() does while Redis is dead or hung.
#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "redis_test_util.hpp"
#include "servers/redis_server.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace relaycore::redis_test;
using relaycore::test::now;
using relaycore::test_servers::RedisServer;

namespace {

EventPtr note(const std::string& content) {
  return test::signed_event(test::alice(), 1, now(), content);
}

// PUBLISH through a plain hiredis connection, as something other than relaycore would.
void raw_publish(const RedisServer& server, const std::string& channel, const std::string& msg) {
  redisContext* c = redisConnect("127.0.0.1", server.port());
  REQUIRE(c != nullptr);
  REQUIRE(c->err == 0);
  auto* r = static_cast<redisReply*>(
      redisCommand(c, "PUBLISH %b %b", channel.data(), channel.size(), msg.data(), msg.size()));
  REQUIRE(r != nullptr);
  freeReplyObject(r);
  redisFree(c);
}

// Publishes fresh events until `inbox` holds one of them; false after `timeout`.
bool publish_until_received(PubSub& pubsub, Inbox& inbox, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
    EventPtr e = note("probe " + std::to_string(i));
    if (pubsub.publish(e, "node-a").is_ok() && inbox.wait_for(1, 100ms) && inbox.has(e)) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("redis: an event published on one PubSub reaches the others with its origin", "[redis]") {
  RedisServer server;
  REQUIRE(server.running());
  auto a = open_pubsub(fast_options(server.url(), "t1"));
  auto b = open_pubsub(fast_options(server.url(), "t1"));
  REQUIRE(a);
  REQUIRE(b);
  Inbox inbox_a, inbox_b;
  REQUIRE(a->subscribe(inbox_a.handler()).is_ok());
  REQUIRE(b->subscribe(inbox_b.handler()).is_ok());

  EventPtr e = test::signed_event(test::bob(), 1, now(), "héllo \"quoted\"\n", {{"t", "x"}});
  REQUIRE(a->publish(e, "node-a").is_ok());
  REQUIRE(inbox_b.wait_for(1));
  auto got = inbox_b.received();
  REQUIRE(got.size() == 1);
  CHECK(got[0].first->json() == e->json());
  CHECK(got[0].second == "node-a");
  // The publisher hears its own echo too, tagged with its origin, for the relay to drop.
  REQUIRE(inbox_a.wait_for(1));
  CHECK(inbox_a.received()[0].second == "node-a");
  // subscribe() is once only, and nothing arrives after close().
  CHECK_FALSE(b->subscribe(inbox_b.handler()).is_ok());
  b->close();
  REQUIRE(a->publish(note("after close"), "node-a").is_ok());
  REQUIRE(inbox_a.wait_for(2));
  CHECK(inbox_b.received().size() == 1);
  CHECK_FALSE(b->publish(note("closed"), "node-b").is_ok());
}

TEST_CASE("redis: malformed URLs and options are refused", "[redis]") {
  for (const char* url : {"http://127.0.0.1:6379", "redis://", "redis://host:0", "redis://h:65536",
                          "redis://h:port", "redis://user@h:1", "redis://h:1/x", "redis://[::1"}) {
    INFO(url);
    RedisOptions o;
    o.url = url;
    Result<std::shared_ptr<PubSub>> p = new_redis_pubsub(o);
    REQUIRE_FALSE(p.is_ok());
    CHECK(p.error().message().rfind("error:", 0) == 0);
  }
  RedisOptions empty_channel;
  empty_channel.channel.clear();
  CHECK_FALSE(new_redis_pubsub(empty_channel).is_ok());
  // An unreachable Redis is not an error: the PubSub reconnects, publish() refuses meanwhile.
  RedisOptions nobody = fast_options(
      "redis://127.0.0.1:" + std::to_string(test_servers::free_loopback_port()) + "/3", "t");
  auto p = open_pubsub(nobody);
  REQUIRE(p);
  Status s = p->publish(note("nobody listens"), "n");
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.message().rfind("error:", 0) == 0);
}

TEST_CASE("redis: a message that is not an origin and a valid event is dropped", "[redis]") {
  RedisServer server;
  REQUIRE(server.running());
  auto b = open_pubsub(fast_options(server.url(), "t2"));
  REQUIRE(b);
  Inbox inbox;
  REQUIRE(b->subscribe(inbox.handler()).is_ok());

  EventPtr good = note("good");
  std::string tampered(good->json());
  tampered.replace(tampered.find("good"), 4, "evil");  // the id no longer matches
  raw_publish(server, "t2", "no newline at all");
  raw_publish(server, "t2", "node-x\n{\"not\":\"an event\"}");
  raw_publish(server, "t2", "node-x\n" + tampered);
  raw_publish(server, "t2", "node-x\n" + std::string(good->json()) + " trailing");
  raw_publish(server, "t2", "node-x\n" + std::string(good->json()));
  // Published last, so received last: once it is in, everything before it was handled.
  EventPtr sentinel = note("sentinel");
  raw_publish(server, "t2", "node-y\n" + std::string(sentinel->json()));
  REQUIRE(inbox.wait_has(sentinel));
  auto got = inbox.received();
  REQUIRE(got.size() == 2);
  CHECK(got[0].first->id() == good->id());
  CHECK(got[0].second == "node-x");
  CHECK(got[1].first->id() == sentinel->id());
}

TEST_CASE("redis: with Redis killed publish fails fast and is counted and delivery resumes",
          "[redis]") {
  RedisServer server;
  REQUIRE(server.running());
  auto a = open_pubsub(fast_options(server.url(), "t3"));
  auto b = open_pubsub(fast_options(server.url(), "t3"));
  REQUIRE(a);
  REQUIRE(b);
  Inbox inbox;
  REQUIRE(b->subscribe(inbox.handler()).is_ok());
  REQUIRE(a->publish(note("before"), "node-a").is_ok());
  REQUIRE(inbox.wait_for(1));

  server.kill();
  std::uint64_t accepted = 0, refused = 0;
  for (int i = 0; i < 50; ++i) {
    const auto start = std::chrono::steady_clock::now();
    Status s = a->publish(note("while down " + std::to_string(i)), "node-a");
    CHECK(std::chrono::steady_clock::now() - start < 50ms);
    (s.is_ok() ? accepted : refused)++;
    std::this_thread::sleep_for(5ms);
  }
  // Once the publisher notices, publish() refuses; what it had accepted is reported lost.
  CHECK(refused > 0);
  // Reported once the publisher's connection fails, on the client's own timers.
  CHECK(test::poll_until([&] { return a->dropped_after_accept() >= accepted; }, 5000ms));
  CHECK(a->dropped_after_accept() == accepted);
  CHECK(inbox.received().size() == 1);

  REQUIRE(server.restart());
  // Both connections come back on their own.
  CHECK(publish_until_received(*a, inbox, 10s));
}

TEST_CASE("redis: a hung Redis never blocks publish and a full queue refuses", "[redis]") {
  RedisServer server;
  REQUIRE(server.running());
  RedisOptions options = fast_options(server.url(), "t4");
  options.queue_capacity = 8;
  options.timeout_ms = 500;
  auto a = open_pubsub(options);
  auto b = open_pubsub(fast_options(server.url(), "t4"));
  REQUIRE(a);
  REQUIRE(b);
  Inbox inbox;
  REQUIRE(b->subscribe(inbox.handler()).is_ok());

  server.pause();
  std::uint64_t accepted = 0;
  std::string first_refusal;
  for (int i = 0; i < 200; ++i) {
    const auto start = std::chrono::steady_clock::now();
    Status s = a->publish(note("while hung " + std::to_string(i)), "node-a");
    CHECK(std::chrono::steady_clock::now() - start < 50ms);
    if (s.is_ok()) {
      ++accepted;
    } else if (first_refusal.empty()) {
      first_refusal = s.message();
    }
    std::this_thread::sleep_for(2ms);
  }
  // The publisher is stuck on its first batch; the queue holds at most 8 more.
  CHECK(first_refusal == "error: redis publish queue is full");
  CHECK(accepted <= 8 + 256);
  // Past timeout_ms, with Redis still hung, the stuck batch is given up.
  CHECK(test::poll_until([&] { return a->dropped_after_accept() > 0; }, 5000ms));
  server.resume();
  CHECK(publish_until_received(*a, inbox, 10s));
}
