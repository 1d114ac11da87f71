// Two real relaycore-relay processes on free ports, sharing one PostgreSQL database and one
// Redis, driven over real WebSockets: what several nodes behind a load balancer promise.
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "examples/child_process.hpp"
#include "servers/postgres_server.hpp"
#include "servers/redis_server.hpp"
#include "test_util.hpp"
#include "ws_client.hpp"

using namespace std::chrono_literals;
using relaycore::EventPtr;
using relaycore::examples_test::ChildProcess;
using relaycore::test::now;
using relaycore::test_servers::PostgresServer;
using relaycore::test_servers::RedisServer;
using relaycore::websocket::test::WsClient;

namespace {

// One relaycore-relay process; port() is 0 when it did not start.
class Node {
 public:
  Node(const std::string& conninfo, const std::string& redis_url)
      : process_(std::make_unique<ChildProcess>(
            std::vector<std::string>{RELAYCORE_RELAY_BIN, "--listen", "127.0.0.1:0", "--postgres",
                                     conninfo, "--redis", redis_url})) {
    std::optional<std::string> line = process_->read_line(30s);
    const std::string marker = "listening on ws://127.0.0.1:";
    if (!line || line->find(marker) == std::string::npos) return;
    port_ = static_cast<std::uint16_t>(std::stoi(line->substr(line->find(marker) + marker.size())));
  }
  std::uint16_t port() const { return port_; }
  // SIGKILL: no drain, no goodbye.
  void kill() { process_.reset(); }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

// A WebSocket client of one node.
class Client {
 public:
  explicit Client(std::uint16_t port) : ws_(port) { ok_ = ws_.connected() && ws_.handshake(); }
  bool ok() const { return ok_; }
  bool send(const std::string& text) { return ws_.send_text(text); }
  // The next text frame that contains `needle`, skipping others; nullopt on timeout.
  std::optional<std::string> wait_for(const std::string& needle,
                                      std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto frame = ws_.read_frame(std::max(left, 1ms));
      if (!frame) return std::nullopt;
      if (frame->payload.find(needle) != std::string::npos) return frame->payload;
    }
    return std::nullopt;
  }
  // Sends the event and waits for its OK; true when accepted.
  bool publish(const EventPtr& e) {
    if (!send("[\"EVENT\"," + std::string(e->json()) + "]")) return false;
    auto ok = wait_for("[\"OK\",\"" + std::string(e->id_hex()) + "\"");
    return ok && ok->find("\",true,") != std::string::npos;
  }
  // Every EVENT of a REQ's history, up to EOSE.
  std::vector<std::string> history(const std::string& sub, const std::string& filter) {
    std::vector<std::string> events;
    if (!send("[\"REQ\",\"" + sub + "\"," + filter + "]")) return events;
    for (;;) {
      auto frame = wait_for("\"" + sub + "\"");
      if (!frame || frame->rfind("[\"EOSE\"", 0) == 0) break;
      events.push_back(*frame);
    }
    send("[\"CLOSE\",\"" + sub + "\"]");
    return events;
  }

 private:
  WsClient ws_;
  bool ok_ = false;
};

// PostgreSQL (one database), Redis and two nodes on them.
struct Cluster {
  PostgresServer pg;
  RedisServer redis;
  std::string conninfo;
  std::unique_ptr<Node> a, b;

  bool start() {
    if (!pg.start() || !redis.running()) return false;
    auto db = pg.create_database();
    if (!db) return false;
    conninfo = pg.conninfo(*db);
    a = std::make_unique<Node>(conninfo, redis.url());
    b = std::make_unique<Node>(conninfo, redis.url());
    return a->port() != 0 && b->port() != 0;
  }
};

// REQ "live" for kind 1 and its EOSE.
bool subscribe_live(Client& client) {
  return client.send(R"(["REQ","live",{"kinds":[1]}])") &&
         client.wait_for("[\"EOSE\",\"live\"]").has_value();
}

EventPtr note(const std::string& content) {
  return relaycore::test::signed_event(relaycore::test::alice(), 1, now(), content);
}

std::string authors_filter(const EventPtr& e, int kind) {
  return R"({"authors":[")" + std::string(e->pubkey_hex()) + R"("],"kinds":[)" +
         std::to_string(kind) + "]}";
}

}  // namespace

TEST_CASE("multinode: an event published on A reaches a subscriber on B and a REQ on B finds it",
          "[multinode]") {
  Cluster c;
  REQUIRE(c.start());
  Client sub_b(c.b->port());
  Client pub_a(c.a->port());
  REQUIRE(sub_b.ok());
  REQUIRE(pub_a.ok());
  REQUIRE(subscribe_live(sub_b));

  EventPtr e = note("from A to B");
  REQUIRE(pub_a.publish(e));
  auto live = sub_b.wait_for(std::string(e->id_hex()));
  REQUIRE(live);
  CHECK(*live == "[\"EVENT\",\"live\"," + std::string(e->json()) + "]");

  Client reader_b(c.b->port());
  REQUIRE(reader_b.ok());
  auto found = reader_b.history("h", authors_filter(e, 1));
  REQUIRE(found.size() == 1);
  CHECK(found[0] == "[\"EVENT\",\"h\"," + std::string(e->json()) + "]");
}

TEST_CASE("multinode: a replaceable race between A and B ends with one winner on both",
          "[multinode]") {
  Cluster c;
  REQUIRE(c.start());
  Client to_a(c.a->port());
  Client to_b(c.b->port());
  REQUIRE(to_a.ok());
  REQUIRE(to_b.ok());
  for (int round = 0; round < 5; ++round) {
    // Same author, kind and created_at: the lowest id must win, wherever each one landed.
    const std::int64_t t = now() - 100 + round;
    EventPtr x =
        relaycore::test::signed_event(relaycore::test::bob(), 0, t, "x" + std::to_string(round));
    EventPtr y =
        relaycore::test::signed_event(relaycore::test::bob(), 0, t, "y" + std::to_string(round));
    REQUIRE(to_a.send("[\"EVENT\"," + std::string(x->json()) + "]"));
    REQUIRE(to_b.send("[\"EVENT\"," + std::string(y->json()) + "]"));
    REQUIRE(to_a.wait_for("[\"OK\",\"" + std::string(x->id_hex()) + "\""));
    REQUIRE(to_b.wait_for("[\"OK\",\"" + std::string(y->id_hex()) + "\""));
    const EventPtr& winner = x->id() < y->id() ? x : y;
    for (Client* client : {&to_a, &to_b}) {
      auto found = client->history("r" + std::to_string(round), authors_filter(winner, 0));
      REQUIRE(found.size() == 1);
      CHECK(found[0].find(std::string(winner->id_hex())) != std::string::npos);
    }
  }
}

TEST_CASE("multinode: killing Redis stops only live cross-node delivery which resumes after",
          "[multinode]") {
  Cluster c;
  REQUIRE(c.start());
  Client sub_b(c.b->port());
  Client pub_a(c.a->port());
  REQUIRE(sub_b.ok());
  REQUIRE(pub_a.ok());
  REQUIRE(subscribe_live(sub_b));

  c.redis.kill();
  // Ingest, acks, storage and reads on both nodes carry on.
  EventPtr during = note("while Redis is down");
  REQUIRE(pub_a.publish(during));
  Client reader_b(c.b->port());
  REQUIRE(reader_b.ok());
  CHECK(reader_b.history("h", authors_filter(during, 1)).size() == 1);

  REQUIRE(c.redis.restart());
  bool resumed = false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (int i = 0; !resumed && std::chrono::steady_clock::now() < deadline; ++i) {
    EventPtr e = note("after restart " + std::to_string(i));
    REQUIRE(pub_a.publish(e));
    resumed = sub_b.wait_for(std::string(e->id_hex()), 300ms).has_value();
  }
  CHECK(resumed);
}

TEST_CASE("multinode: killing one node loses no acked event", "[multinode]") {
  Cluster c;
  REQUIRE(c.start());
  Client pub_a(c.a->port());
  REQUIRE(pub_a.ok());
  // Pipeline a burst, collect the OKs that arrive, then SIGKILL A mid-stream.
  std::vector<EventPtr> sent;
  for (int i = 0; i < 200; ++i) {
    sent.push_back(note("burst " + std::to_string(i)));
    REQUIRE(pub_a.send("[\"EVENT\"," + std::string(sent.back()->json()) + "]"));
  }
  std::set<std::string> acked;
  while (acked.size() < 50) {
    auto ok = pub_a.wait_for("[\"OK\",");
    REQUIRE(ok);
    if (ok->find("\",true,") != std::string::npos) acked.insert(ok->substr(7, 64));
  }
  c.a->kill();
  Client reader_b(c.b->port());
  REQUIRE(reader_b.ok());
  std::set<std::string> stored;
  for (const std::string& frame : reader_b.history("all", R"({"kinds":[1],"limit":500})")) {
    const std::size_t at = frame.find("\"id\":\"");
    if (at != std::string::npos) stored.insert(frame.substr(at + 6, 64));
  }
  for (const std::string& id : acked) CHECK(stored.count(id) == 1);
}
