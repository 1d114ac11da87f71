// The server side of the WebSocket tests: a Handler whose sessions echo every text message
// (or run a test's own reaction), answer GET /hello, count opens and closes and let a test wait
// for what the server reports; and a fixture that starts a server on a free port.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "relaycore/websocket/server.hpp"
#include "ws_client.hpp"

namespace relaycore::websocket::test {

// What a session does with a text message; the default echoes it.
using OnText = std::function<void(const std::shared_ptr<Connection>&, std::string_view)>;

class TestHandler;

class TestSession final : public Session {
 public:
  TestSession(std::shared_ptr<Connection> connection, TestHandler* handler)
      : connection_(std::move(connection)), handler_(handler) {}
  void on_message(std::string_view frame) override;
  bool try_on_message(std::string_view frame) override;
  void on_drain() override;
  void on_close() override;
  std::string auth_challenge() const override { return {}; }

 private:
  std::mutex mu_;
  std::shared_ptr<Connection> connection_;
  TestHandler* handler_;
  bool closed_ = false;
};

class TestHandler final : public Handler {
 public:
  std::shared_ptr<Session> on_open(std::shared_ptr<Connection> connection,
                                   ClientInfo client) override {
    {
      std::lock_guard lock(mu);
      clients.push_back(client);
      connections.push_back(connection);
      open_threads.push_back(std::this_thread::get_id());
    }
    opens.fetch_add(1);
    notify();
    if (refuse_open.load()) return nullptr;
    return std::make_shared<TestSession>(std::move(connection), this);
  }

  std::optional<HttpResponse> on_http(const HttpRequest& request) override {
    if (request.target != "/hello") return std::nullopt;
    HttpResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "hello, " + request.header("x-name") + "\n";
    r.headers.emplace_back("X-Test", "yes");
    r.headers.emplace_back("X-Evil", "a\r\nInjected: 1");  // must be dropped
    return r;
  }

  // Waits until `pred` holds; false after `timeout`. Every call the server makes into this
  // handler or its sessions (open, message, drain, close) has it look again, so `pred` may read
  // anything those calls follow.
  bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(wait_mu_);
    return changed_.wait_for(lock, timeout, pred);
  }
  // Wakes wait_until() after a change; taking its mutex first means no waiter misses it.
  void notify() {
    { std::lock_guard lock(wait_mu_); }
    changed_.notify_all();
  }

  OnText on_text;  // set before clients connect
  // Session::try_on_message(): declines every message while unset.
  std::function<bool(const std::shared_ptr<Connection>&, std::string_view)> on_try;
  std::atomic<bool> refuse_open{false};
  std::atomic<int> opens{0};
  std::atomic<int> closes{0};
  std::atomic<int> double_closes{0};
  std::atomic<int> messages{0};
  std::mutex mu;
  std::vector<ClientInfo> clients;
  std::vector<std::weak_ptr<Connection>> connections;
  // The I/O thread each on_open() ran on.
  std::vector<std::thread::id> open_threads;

 private:
  std::mutex wait_mu_;  // not mu: a wait_until() predicate may take mu
  std::condition_variable changed_;
};

inline void TestSession::on_message(std::string_view frame) {
  handler_->messages.fetch_add(1);
  handler_->notify();
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(mu_);
    connection = connection_;
  }
  if (!connection) return;
  if (handler_->on_text) {
    handler_->on_text(connection, frame);
  } else {
    connection->send(Frame(std::string(frame)));
  }
  handler_->notify();  // what the test's reaction did
}

inline bool TestSession::try_on_message(std::string_view frame) {
  if (!handler_->on_try) return false;
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(mu_);
    connection = connection_;
  }
  return connection && handler_->on_try(connection, frame);
}

inline void TestSession::on_drain() { handler_->notify(); }

inline void TestSession::on_close() {
  std::lock_guard lock(mu_);
  if (closed_) handler_->double_closes.fetch_add(1);
  closed_ = true;
  connection_.reset();
  handler_->closes.fetch_add(1);
  handler_->notify();
}

struct ServerFixture {
  explicit ServerFixture(ServerOptions options = {}) {
    options.port = 0;
    Result<std::unique_ptr<Server>> started = Server::start(options, handler);
    if (!started) FAIL("server did not start: " << started.error().message());
    server = std::move(started).value();
  }
  // Every test ends with the invariant: each session got exactly one on_close().
  ~ServerFixture() {
    if (!server) return;
    server->stop();
    CHECK(handler->double_closes.load() == 0);
    if (!handler->refuse_open.load()) CHECK(handler->closes.load() == handler->opens.load());
    CHECK(server->stats().connections_open == 0);
  }

  std::uint16_t port() const { return server->port(); }

  // A connected client that has completed the handshake.
  std::unique_ptr<WsClient> open() {
    auto c = std::make_unique<WsClient>(port());
    REQUIRE(c->connected());
    REQUIRE(c->handshake());
    return c;
  }

  // The server still serves: a fresh connection echoes a message.
  // Waits for its own on_close(), so tests can count closes afterwards.
  void expect_still_serves() {
    const int closes = handler->closes.load();
    auto c = open();
    REQUIRE(c->send_text("still serving"));
    std::optional<ServerFrame> f = c->read_data_or_close();
    REQUIRE(f);
    CHECK(f->opcode == kOpText);
    CHECK(f->payload == "still serving");
    c.reset();
    // At least: an earlier connection's on_close() may land in the meantime.
    CHECK(handler->wait_until([&] { return handler->closes.load() >= closes + 1; }));
  }

  std::shared_ptr<TestHandler> handler = std::make_shared<TestHandler>();
  std::unique_ptr<Server> server;
};

}  // namespace relaycore::websocket::test
