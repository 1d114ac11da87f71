// Connection lifecycle and the Connection contract: idle timeout, the outbound cap, queued
// bytes, event frames, cross-thread sends, back-pressure isolation, close() and stop().
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include "relaycore/keys.hpp"
#include "test_server_util.hpp"

namespace relaycore::websocket::test {
namespace {

std::shared_ptr<Connection> connection_at(TestHandler& handler, std::size_t i) {
  std::lock_guard lock(handler.mu);
  return i < handler.connections.size() ? handler.connections[i].lock() : nullptr;
}

std::string this_thread_name() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

// The names of this process's threads, from /proc.
std::set<std::string> thread_names() {
  std::set<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

// Leaves this process exactly one free file descriptor until destroyed: lowers the soft limit
// just above the descriptors in use and fills the rest with /dev/null.
class OneFreeDescriptor {
 public:
  OneFreeDescriptor() {
    getrlimit(RLIMIT_NOFILE, &old_);
    int highest = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      highest = std::max(highest, std::stoi(entry.path().filename().string()));
    }
    rlimit low = old_;
    low.rlim_cur = static_cast<rlim_t>(highest) + 16;
    lowered_ = setrlimit(RLIMIT_NOFILE, &low) == 0;
    for (int fd; lowered_ && (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) {
      fillers_.push_back(fd);
    }
    if (!fillers_.empty()) {
      ::close(fillers_.back());
      fillers_.pop_back();
    }
  }
  ~OneFreeDescriptor() { restore(); }

  bool ready() const { return lowered_ && !fillers_.empty(); }

  // The limit first: closing the fillers one by one under the low limit would leave a thread
  // that takes descriptors meanwhile (the server, accepting) short of them for a moment.
  void restore() {
    if (lowered_) setrlimit(RLIMIT_NOFILE, &old_);
    lowered_ = false;
    for (int fd : fillers_) ::close(fd);
    fillers_.clear();
  }

 private:
  rlimit old_{};
  bool lowered_ = false;
  std::vector<int> fillers_;
};

}  // namespace

TEST_CASE(
    "accepts that fail for want of descriptors are counted, and retried once there are some") {
  ServerFixture fx;
  auto failures = [&] { return fx.server->stats().accept_failures; };
  // A connection served and the calls below made once before the descriptors run out: UBSan's
  // first check of each dynamic type needs a pipe. For the same reason nothing in the window
  // below asserts.
  fx.expect_still_serves();
  const std::uint64_t taken_before = fx.server->stats().connections_total;
  CHECK(failures() == 0);
  CHECK(fx.handler->wait_until([&] { return failures() == 0; }));
  bool ready = false, connected = false, counted = false;
  std::uint64_t taken_meanwhile = 0;
  int client = -1;
  {
    OneFreeDescriptor limit;
    ready = limit.ready();
    // The client's socket takes the last descriptor; the server, in this same process, cannot
    // accept the connection the kernel has already completed.
    if (ready) client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client >= 0) {
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(fx.port());
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      connected = ::connect(client, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0;
    }
    if (connected) counted = fx.handler->wait_until([&] { return failures() >= 1; });
    taken_meanwhile = fx.server->stats().connections_total;
  }
  REQUIRE(ready);
  REQUIRE(connected);
  CHECK(counted);
  CHECK(taken_meanwhile == taken_before);
  // Descriptors again: the waiting connection is taken in, and new ones are served.
  CHECK(fx.handler->wait_until(
      [&] { return fx.server->stats().connections_total == taken_before + 1; }));
  fx.expect_still_serves();
  ::close(client);
  CHECK(fx.handler->wait_until([&] { return fx.server->stats().connections_open == 0; }));
}

TEST_CASE("an idle connection is pinged at half the timeout, then closed and counted") {
  ServerOptions o;
  o.idle_timeout_seconds = 1;
  ServerFixture fx(o);
  auto c = fx.open();
  const auto start = std::chrono::steady_clock::now();
  std::optional<ServerFrame> ping = c->read_frame(3000ms);
  REQUIRE(ping);
  CHECK(ping->opcode == kOpPing);
  CHECK(std::chrono::steady_clock::now() - start >= 400ms);
  CHECK(c->read_close_code(3000ms) == 1001);
  CHECK(std::chrono::steady_clock::now() - start >= 900ms);
  CHECK(c->wait_closed());
  CHECK(fx.server->stats().idle_closes == 1);
  c.reset();
  CHECK(fx.handler->wait_until([&] { return fx.handler->closes.load() == 1; }));
}

TEST_CASE("a client that answers pings is not idle") {
  ServerOptions o;
  o.idle_timeout_seconds = 1;
  ServerFixture fx(o);
  auto c = fx.open();
  const auto until = std::chrono::steady_clock::now() + 2200ms;
  int pings = 0;
  while (std::chrono::steady_clock::now() < until) {
    std::optional<ServerFrame> f = c->read_frame(100ms);
    if (!f) {
      REQUIRE_FALSE(c->eof());
      continue;
    }
    REQUIRE(f->opcode == kOpPing);
    ++pings;
    REQUIRE(c->send_frame(kOpPong, f->payload));
  }
  CHECK(pings >= 2);
  CHECK(fx.server->stats().idle_closes == 0);
  CHECK(c->send_text("alive"));
  CHECK(c->read_data_or_close()->payload == "alive");
}

TEST_CASE("a connection that never sends a request head is closed at the idle timeout") {
  ServerOptions o;
  o.idle_timeout_seconds = 1;
  ServerFixture fx(o);
  WsClient c(fx.port());
  REQUIRE(c.connected());
  CHECK(c.wait_closed(3000ms));
  CHECK(fx.server->stats().idle_closes == 1);
}

TEST_CASE("a client that never reads is dropped at max_outbound_bytes and the server carries on") {
  const std::string chunk(64 * 1024, 'f');  // declared first: it outlives the server
  ServerOptions o;
  o.max_outbound_bytes = 1u << 20;
  ServerFixture fx(o);
  fx.handler->on_text = [&](const std::shared_ptr<Connection>& c, std::string_view text) {
    if (text != "flood") {
      c->send(Frame(std::string(text)));
      return;
    }
    for (int i = 0; i < 400; ++i) c->send(Frame(chunk));  // 25 MiB, far past the cap
  };
  auto flooded = fx.open();
  REQUIRE(flooded->send_text("flood"));
  // The server counts the overflow before it closes the connection, and on_close() comes last.
  CHECK(fx.handler->wait_until([&] { return fx.handler->closes.load() == 1; }));
  CHECK(fx.server->stats().outbound_overflow_closes == 1);
  fx.expect_still_serves();
  CHECK(flooded->wait_closed());  // after the bytes already in flight, the connection is gone
  CHECK(fx.server->stats().outbound_overflow_closes == 1);
}

TEST_CASE("queued_bytes counts what was sent and not yet written, back to 0 once read") {
  std::atomic<std::size_t> queued_after_send{0};
  const std::string chunk(64 * 1024, 'q');
  ServerFixture fx;
  fx.handler->on_text = [&](const std::shared_ptr<Connection>& c, std::string_view) {
    for (int i = 0; i < 96; ++i) c->send(Frame(chunk));  // 6 MiB, under the 8 MiB cap
    queued_after_send = c->queued_bytes();
  };
  auto c = fx.open();
  REQUIRE(c->send_text("go"));
  REQUIRE(fx.handler->wait_until([&] { return queued_after_send.load() > 0; }));
  CHECK(queued_after_send.load() <= 96 * chunk.size());
  for (int i = 0; i < 96; ++i) {
    std::optional<ServerFrame> f = c->read_frame();
    REQUIRE(f);
    REQUIRE(f->payload.size() == chunk.size());
  }
  std::shared_ptr<Connection> conn = connection_at(*fx.handler, 0);
  REQUIRE(conn);
  // Each completed write lowers the count, then calls on_drain().
  CHECK(fx.handler->wait_until([&] { return conn->queued_bytes() == 0; }));
  CHECK(fx.server->stats().outbound_overflow_closes == 0);
}

TEST_CASE("an event Frame arrives as head, canonical JSON and the closing bracket") {
  ServerFixture fx;
  EventDraft draft;
  draft.created_at = 1700000000;
  draft.content = "hello \"quoted\"\nand unicode \xE2\x9C\x93";
  draft.tags = {{"t", "nostr"}};
  Result<EventPtr> event = sign_event(Keypair::generate(), draft);
  REQUIRE(event);
  EventPtr ev = *event;
  fx.handler->on_text = [ev](const std::shared_ptr<Connection>& c, std::string_view) {
    c->send(Frame(R"(["EVENT","sub1",)", ev));
  };
  auto c = fx.open();
  REQUIRE(c->send_text("give"));
  std::optional<ServerFrame> f = c->read_frame();
  REQUIRE(f);
  CHECK(f->payload == R"(["EVENT","sub1",)" + std::string(ev->json()) + "]");
}

TEST_CASE("event frames and replies go out in the order sent, in batches or one by one") {
  ServerFixture fx;
  EventDraft draft;
  draft.created_at = 1700000000;
  draft.content = "fan-out";
  Result<EventPtr> event = sign_event(Keypair::generate(), draft);
  REQUIRE(event);
  const EventPtr ev = *event;
  auto c = fx.open();
  REQUIRE(fx.handler->wait_until([&] { return connection_at(*fx.handler, 0) != nullptr; }));
  std::shared_ptr<Connection> conn = connection_at(*fx.handler, 0);
  // Event frames are flushed by the writer threads and replies written at once: a reply must
  // still not overtake the event frames queued before it.
  std::vector<std::string> want;
  for (int round = 0; round < 50; ++round) {
    std::vector<Frame> batch;
    for (int i = 0; i < 3; ++i) {
      const std::string head = "[\"EVENT\",\"s" + std::to_string(round * 3 + i) + "\",";
      batch.emplace_back(head, ev);
      want.push_back(head + std::string(ev->json()) + "]");
    }
    if (round % 2 == 0) {
      batch.emplace_back("[\"EOSE\",\"" + std::to_string(round) + "\"]");
      want.push_back(batch.back().to_string());
      conn->send_batch(batch);
    } else {
      conn->send_batch(batch);
      conn->send(Frame("[\"OK\",\"" + std::to_string(round) + "\"]"));
      want.push_back("[\"OK\",\"" + std::to_string(round) + "\"]");
    }
  }
  for (const std::string& w : want) {
    std::optional<ServerFrame> f = c->read_frame();
    REQUIRE(f);
    REQUIRE(f->payload == w);
  }
  CHECK(fx.handler->wait_until([&] { return conn->queued_bytes() == 0; }));
}

TEST_CASE("sends from several threads keep each thread's order") {
  ServerFixture fx;
  auto c = fx.open();
  REQUIRE(fx.handler->wait_until([&] { return connection_at(*fx.handler, 0) != nullptr; }));
  std::shared_ptr<Connection> conn = connection_at(*fx.handler, 0);
  constexpr int kThreads = 3;
  constexpr int kPerThread = 1500;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([conn, t] {
      for (int i = 0; i < kPerThread; ++i) {
        conn->send(Frame(std::to_string(t) + ":" + std::to_string(i)));
      }
    });
  }
  // The client echoes meanwhile, so reads and writes interleave on the server.
  REQUIRE(c->send_text("x:-1"));
  std::vector<int> next(kThreads, 0);
  int echoes = 0;
  for (int n = 0; n < kThreads * kPerThread + 1; ++n) {
    std::optional<ServerFrame> f = c->read_frame();
    REQUIRE(f);
    const std::size_t colon = f->payload.find(':');
    REQUIRE(colon != std::string::npos);
    if (f->payload[0] == 'x') {
      ++echoes;
      continue;
    }
    const int t = std::stoi(f->payload.substr(0, colon));
    const int i = std::stoi(f->payload.substr(colon + 1));
    REQUIRE(i == next[static_cast<std::size_t>(t)]);
    ++next[static_cast<std::size_t>(t)];
  }
  for (std::thread& s : senders) s.join();
  CHECK(echoes == 1);
  CHECK(next == std::vector<int>(kThreads, kPerThread));
}

TEST_CASE("a blocked on_message stalls neither other connections nor writes to itself") {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ServerOptions o;
  o.threads = 1;
  ServerFixture fx(o);
  fx.handler->on_text = [released](const std::shared_ptr<Connection>& c, std::string_view text) {
    if (text == "block") {
      released.wait_for(10s);
    }
    c->send(Frame(std::string(text)));
  };
  auto a = fx.open();
  REQUIRE(a->send_text("block"));
  REQUIRE(a->send_text("after"));
  REQUIRE(fx.handler->wait_until([&] { return fx.handler->messages.load() == 1; }));
  // Another client is served while a's on_message blocks the only I/O thread's worth of pool.
  auto b = fx.open();
  REQUIRE(b->send_text("b1"));
  std::optional<ServerFrame> f = b->read_frame(2000ms);
  REQUIRE(f);
  CHECK(f->payload == "b1");
  // Writes to the blocked connection still go out.
  connection_at(*fx.handler, 0)->send(Frame("pushed"));
  f = a->read_frame(2000ms);
  REQUIRE(f);
  CHECK(f->payload == "pushed");
  release.set_value();
  CHECK(a->read_frame()->payload == "block");
  CHECK(a->read_frame()->payload == "after");
}

// Broken by a server that never offers messages to try_on_message() (every message would take a
// hand-off to the pool), that calls it off the connection's I/O thread, or that lets a message
// the session took overtake one it declined.
TEST_CASE("try_on_message takes messages on the I/O thread, in order with those it declines") {
  ServerOptions o;
  o.threads = 1;
  ServerFixture fx(o);
  std::mutex mu;
  std::vector<std::thread::id> try_threads;
  fx.handler->on_try = [&](const std::shared_ptr<Connection>& c, std::string_view text) {
    {
      std::lock_guard lock(mu);
      try_threads.push_back(std::this_thread::get_id());
    }
    if (text.rfind("fast", 0) != 0) return false;
    c->send(Frame("took " + std::string(text)));
    return true;
  };
  fx.handler->on_text = [](const std::shared_ptr<Connection>& c, std::string_view text) {
    c->send(Frame("pool " + std::string(text)));
  };
  auto a = fx.open();
  for (const char* text : {"fast1", "slow1", "fast2", "slow2", "fast3"}) {
    REQUIRE(a->send_text(text));
  }
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    std::optional<ServerFrame> f = a->read_frame();
    REQUIRE(f);
    got.push_back(f->payload);
  }
  // What came after a declined message may have gone to the pool with it; its order holds.
  REQUIRE(got.size() == 5);
  CHECK(got[0] == "took fast1");
  CHECK(got[1] == "pool slow1");
  const std::vector<std::string> rest = {"fast2", "slow2", "fast3"};
  for (std::size_t i = 0; i < rest.size(); ++i) {
    CHECK(got[i + 2].substr(got[i + 2].size() - rest[i].size()) == rest[i]);
  }
  std::lock_guard lock(mu);
  REQUIRE_FALSE(try_threads.empty());
  std::lock_guard opened(fx.handler->mu);
  for (std::thread::id t : try_threads) CHECK(t == fx.handler->open_threads.at(0));
}

// Operators tell the server's threads apart in top -H, perf and /proc by these names.
TEST_CASE("the I/O, message and fan-out threads carry their names") {
  ServerFixture fx;
  std::mutex mu;
  std::string try_name, text_name;
  fx.handler->on_try = [&](const std::shared_ptr<Connection>&, std::string_view) {
    std::lock_guard lock(mu);
    try_name = this_thread_name();
    return false;
  };
  Result<EventPtr> event = sign_event(Keypair::generate(), EventDraft{});
  REQUIRE(event);
  EventPtr ev = *event;
  fx.handler->on_text = [&](const std::shared_ptr<Connection>& c, std::string_view) {
    {
      std::lock_guard lock(mu);
      text_name = this_thread_name();
    }
    c->send(Frame(R"(["EVENT","sub1",)", ev));  // fan-out: written by the writer pool
  };
  auto c = fx.open();
  REQUIRE(c->send_text("hello"));
  REQUIRE(c->read_frame());
  {
    std::lock_guard lock(mu);
    CHECK(try_name == "rc-ws-io");
    CHECK(text_name == "rc-ws-message");
  }
  CHECK(thread_names().count("rc-ws-fanout") == 1);
}

TEST_CASE("Connection::close sends 1008 with the reason, or 1000 without one") {
  ServerFixture fx;
  fx.handler->on_text = [&](const std::shared_ptr<Connection>& c, std::string_view text) {
    c->send(Frame("last words"));
    c->close(text == "policy" ? "blocked: go away" : "");
    c->send(Frame("dropped: after close"));
  };
  auto a = fx.open();
  REQUIRE(a->send_text("policy"));
  CHECK(a->read_frame()->payload == "last words");
  std::optional<ServerFrame> f = a->read_frame();
  REQUIRE(f);
  CHECK(f->opcode == kOpClose);
  CHECK(f->close_code() == 1008);
  CHECK(f->payload.substr(2) == "blocked: go away");
  CHECK(a->wait_closed());
  auto b = fx.open();
  REQUIRE(b->send_text("plain"));
  CHECK(b->read_frame()->payload == "last words");
  CHECK(b->read_close_code() == 1000);
  // Answering the close completes the handshake: the server hangs up at once, without waiting
  // for us to close the TCP connection first.
  REQUIRE(b->send_close(1000));
  CHECK(b->wait_closed(1000ms));
}

TEST_CASE("a handler that returns no session gets its connection closed with 1011") {
  ServerFixture fx;
  fx.handler->refuse_open = true;
  auto c = fx.open();
  CHECK(c->read_close_code() == 1011);
  CHECK(c->wait_closed());
  CHECK(fx.handler->closes.load() == 0);
}

TEST_CASE("stop closes every connection with 1001, calls on_close once each, and is idempotent") {
  ServerFixture fx;
  auto a = fx.open();
  auto b = fx.open();
  REQUIRE(fx.handler->wait_until([&] { return fx.handler->opens.load() == 2; }));
  std::shared_ptr<Connection> kept = connection_at(*fx.handler, 0);
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] { fx.server->stop(); });
  CHECK(a->read_close_code() == 1001);
  CHECK(b->read_close_code() == 1001);
  a.reset();
  b.reset();
  stopper.join();
  CHECK(std::chrono::steady_clock::now() - start < 1400ms);  // no wait for the grace period
  CHECK(fx.handler->closes.load() == 2);
  fx.server->stop();
  CHECK(fx.server->stats().connections_open == 0);
  CHECK(fx.server->stats().connections_total == 2);
  // A connection kept past the server's end is inert.
  REQUIRE(kept);
  kept->send(Frame("into the void"));
  kept->close("late");
  CHECK(kept->queued_bytes() == 0);
  CHECK(WsClient(fx.port()).connected() == false);
}

TEST_CASE("stop does not wait forever for a client that ignores the close handshake") {
  ServerFixture fx;
  WsClient half(fx.port());  // connected, never sends a request head
  REQUIRE(half.connected());
  // Accepted one at a time, in order: once a is open, half has been accepted too.
  auto a = fx.open();
  REQUIRE(fx.server->stats().connections_open == 2);
  const auto start = std::chrono::steady_clock::now();
  fx.server->stop();
  CHECK(std::chrono::steady_clock::now() - start < 4s);
  CHECK(fx.handler->closes.load() == 1);
  CHECK(a->read_close_code() == 1001);
}

TEST_CASE("many clients echo concurrently on two I/O threads") {
  ServerOptions o;
  o.threads = 2;
  ServerFixture fx(o);
  constexpr int kClients = 24;
  constexpr int kMessages = 40;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      WsClient c(fx.port());
      if (!c.handshake()) return;
      for (int m = 0; m < kMessages; ++m) {
        const std::string text = std::to_string(i) + "/" + std::to_string(m);
        if (!c.send_text(text)) return;
        std::optional<ServerFrame> f = c.read_frame();
        if (!f || f->payload != text) return;
      }
      c.send_close(1000);
      if (c.read_close_code() == 1000) ok.fetch_add(1);
    });
  }
  for (std::thread& t : clients) t.join();
  CHECK(ok.load() == kClients);
  CHECK(fx.handler->wait_until([&] { return fx.handler->closes.load() == kClients; }));
}

}  // namespace relaycore::websocket::test
