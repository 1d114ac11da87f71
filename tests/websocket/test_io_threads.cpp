// The I/O threads: each connection lives on one of them, a new one on the thread with the fewest,
// and a connection that floods its thread with messages gives the others on it their turn.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "test_server_util.hpp"

namespace relaycore::websocket::test {
namespace {

// Which I/O thread took each connection's messages, by connection.
struct ThreadLog {
  std::mutex mu;
  std::map<const Connection*, std::set<std::thread::id>> threads;
  int messages = 0;
};

}  // namespace

// Broken by a server whose connections all live on one I/O thread (the others idle while it is
// busy), or whose connections move between threads (a context the threads share).
TEST_CASE("connections are spread over the I/O threads, each staying on one") {
  constexpr int kConnections = 4;
  constexpr int kMessages = 20;
  ServerOptions o;
  o.threads = 2;
  ServerFixture fx(o);
  ThreadLog log;
  fx.handler->on_try = [&](const std::shared_ptr<Connection>& c, std::string_view) {
    {
      std::lock_guard lock(log.mu);
      log.threads[c.get()].insert(std::this_thread::get_id());
      ++log.messages;
    }
    fx.handler->notify();
    return true;
  };
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kConnections; ++i) clients.push_back(fx.open());
  for (int m = 0; m < kMessages; ++m) {
    for (auto& client : clients) REQUIRE(client->send_text("m" + std::to_string(m)));
  }
  REQUIRE(fx.handler->wait_until([&] {
    std::lock_guard lock(log.mu);
    return log.messages == kConnections * kMessages;
  }));
  std::set<std::thread::id> all;
  std::lock_guard lock(log.mu);
  REQUIRE(log.threads.size() == kConnections);
  for (const auto& [connection, threads] : log.threads) {
    CHECK(threads.size() == 1);
    all.insert(threads.begin(), threads.end());
  }
  CHECK(all.size() == 2);
}

// Broken by a server that hands out the I/O threads in turn: c, the third connection, would
// share a's thread although b's is empty since b left.
TEST_CASE("a new connection goes to the I/O thread with the fewest connections") {
  ServerOptions o;
  o.threads = 2;
  ServerFixture fx(o);
  auto open_thread = [&](std::size_t i) {
    REQUIRE(fx.handler->wait_until([&] { return fx.handler->opens.load() > int(i); }));
    std::lock_guard lock(fx.handler->mu);
    return fx.handler->open_threads.at(i);
  };
  auto a = fx.open();
  const std::thread::id a_thread = open_thread(0);
  auto b = fx.open();
  const std::thread::id b_thread = open_thread(1);
  REQUIRE(a_thread != b_thread);
  b.reset();  // b hangs up
  // The server counts b as open until its on_close() has returned.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (fx.server->stats().connections_open != 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(fx.server->stats().connections_open == 1);
  auto c = fx.open();
  CHECK(open_thread(2) == b_thread);
}

// Broken by a connection that handles every message of a read before its thread serves another:
// b's one message would wait behind all of a's, here 300 x 200 us.
TEST_CASE("a connection flooding its I/O thread lets the others on it take turns") {
  constexpr int kFlood = 300;
  ServerOptions o;
  o.threads = 1;
  ServerFixture fx(o);
  std::mutex mu;
  std::vector<std::string> order;
  fx.handler->on_try = [&](const std::shared_ptr<Connection>&, std::string_view text) {
    if (text[0] == 'a') std::this_thread::sleep_for(std::chrono::microseconds(200));
    {
      std::lock_guard lock(mu);
      order.emplace_back(text);
    }
    fx.handler->notify();
    return true;
  };
  auto a = fx.open();
  auto b = fx.open();
  // All of a's messages in one write, so that one read takes them (3 KB, under the 16 KiB a
  // read asks for), then b's.
  std::string flood;
  for (int i = 0; i < kFlood; ++i) flood += WsClient::frame_bytes(kOpText, "a" + std::to_string(i));
  REQUIRE(a->send_raw(flood));
  REQUIRE(b->send_text("b"));
  REQUIRE(fx.handler->wait_until([&] {
    std::lock_guard lock(mu);
    return order.size() == kFlood + 1;
  }));
  std::lock_guard lock(mu);
  const auto at = std::find(order.begin(), order.end(), "b") - order.begin();
  INFO("b's message was handled after " << at << " of a's");
  CHECK(at < kFlood / 3);
}

}  // namespace relaycore::websocket::test
