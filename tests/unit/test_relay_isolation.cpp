// No client can slow the others: a reader that stops reading parks its queries without holding
// a thread, readers are shared round-robin between sessions, and a query parked past its
// deadline closes only its own connection.
#include <algorithm>
#include <catch2/catch.hpp>
#include <future>
#include <map>

#include "pipeline/outbox.hpp"
#include "pipeline/query_scheduler.hpp"
#include "relay_test_util.hpp"
#include "relaycore/message.hpp"
#include "relaycore/relay.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kStored = 300;

// A relay with one reader thread, a small outbound cap and kStored events of 1.5 KB each, so
// that one REQ for everything is several times the cap.
struct IsolationRelay {
  std::unique_ptr<Relay> relay;
  // Every stored event in the order history is served: newest first, then lowest id.
  std::vector<EventPtr> expected;

  explicit IsolationRelay(std::function<void(Options&)> tweak = nullptr) {
    Options o;
    o.storage = new_memory_storage();
    o.reader_threads = 1;
    o.verify_threads = 1;
    o.max_outbound_bytes = 64 * 1024;
    if (tweak) tweak(o);
    relay = Relay::open(std::move(o)).value();
    const std::int64_t base = test::now() - 1000;
    for (std::size_t i = 0; i < kStored; ++i) {
      // Three events share each created_at, so the order within a second is by id.
      EventPtr e = test::signed_event(test::alice(), 1, base + static_cast<std::int64_t>(i / 3),
                                      std::string(1500, 'a' + static_cast<char>(i % 26)));
      REQUIRE(relay->submit(e).accepted);
      expected.push_back(e);
    }
    std::sort(expected.begin(), expected.end(),
              [](const EventPtr& a, const EventPtr& b) { return event_key(*a) < event_key(*b); });
  }

  struct Client {
    std::shared_ptr<test::RecordingConnection> conn = std::make_shared<test::RecordingConnection>();
    std::shared_ptr<Session> session;
  };
  Client connect() {
    Client c;
    c.session = relay->open_session(c.conn, ClientInfo{});
    return c;
  }
};

// The ids of the EVENT frames of subscription `sub_id`, in arrival order.
std::vector<std::string> event_ids(const std::vector<std::string>& frames,
                                   std::string_view sub_id) {
  const std::string head = "[\"EVENT\",\"" + std::string(sub_id) + "\",";
  std::vector<std::string> ids;
  for (const std::string& f : frames) {
    if (f.rfind(head, 0) != 0) continue;
    const std::size_t at = f.find("\"id\":\"");
    ids.push_back(f.substr(at + 6, 64));
  }
  return ids;
}

std::vector<std::string> hex_ids(const std::vector<EventPtr>& events, std::size_t n) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n && i < events.size(); ++i) ids.emplace_back(events[i]->id_hex());
  return ids;
}

}  // namespace

TEST_CASE("with one reader, a connection that never drains does not delay another's REQ",
          "[relay][isolation]") {
  IsolationRelay r;
  auto slow = r.connect();
  slow.conn->stalled = true;  // every frame stays queued: the peer never reads
  for (int i = 0; i < 5; ++i) {
    slow.session->on_message(R"(["REQ","s)" + std::to_string(i) + R"(",{}])");
  }
  // Its history has started and filled the connection.
  REQUIRE(slow.conn->wait_count("[\"EVENT\"", 1));

  auto healthy = r.connect();
  healthy.session->on_message(R"(["REQ","h",{"ids":[")" + std::string(r.expected[7]->id_hex()) +
                              R"("]}])");
  REQUIRE(healthy.conn->wait_count("[\"EOSE\"", 1));
  CHECK(event_ids(healthy.conn->frames(), "h") == hex_ids({r.expected[7]}, 1));
  healthy.session->on_message(R"(["COUNT","c",{"kinds":[1]}])");
  REQUIRE(healthy.conn->wait_count("[\"COUNT\"", 1));

  // The slow session is still parked: no EOSE, not closed, and under its cap.
  CHECK(slow.conn->count("[\"EOSE\"") == 0);
  CHECK_FALSE(slow.conn->closed());
  CHECK(slow.conn->fake_queued.load() <= 64 * 1024);
}

TEST_CASE("a parked REQ resumes on each drain and delivers exactly what it owes, in order",
          "[relay][isolation]") {
  IsolationRelay r;
  auto c = r.connect();
  c.conn->stalled = true;
  c.session->on_message(R"(["REQ","all",{}])");
  c.session->on_message(R"(["REQ","some",{"limit":50},{"ids":[")" +
                        std::string(r.expected[200]->id_hex()) + R"("]}])");
  auto eoses = [](const std::vector<std::string>& fs) {
    return test::RecordingConnection::count(fs, "[\"EOSE\"");
  };
  // Each time the peer reads, the relay sends more, until both histories are out.
  for (int round = 0; round < 1000 && eoses(c.conn->frames()) < 2; ++round) {
    const std::size_t before = c.conn->frames().size();
    c.conn->read_all(*c.session);
    REQUIRE(c.conn->wait_until(
        [&](const std::vector<std::string>& fs) { return fs.size() > before || eoses(fs) == 2; }));
  }
  const std::vector<std::string> frames = c.conn->frames();
  REQUIRE(eoses(frames) == 2);
  CHECK(event_ids(frames, "all") == hex_ids(r.expected, kStored));
  std::vector<std::string> some = hex_ids(r.expected, 50);
  some.emplace_back(r.expected[200]->id_hex());
  CHECK(event_ids(frames, "some") == some);
  CHECK_FALSE(c.conn->closed());

  // Then both are live.
  c.conn->read_all(*c.session);
  EventPtr fresh = test::signed_event(test::bob(), 1, test::now(), "fresh");
  REQUIRE(r.relay->submit(fresh).accepted);
  REQUIRE(c.conn->wait_count("[\"EVENT\",\"some\"", 52));
  REQUIRE(c.conn->wait_count("[\"EVENT\",\"all\"", kStored + 1));
}

TEST_CASE("a REQ parked past the slow-reader deadline closes only its own connection",
          "[relay][isolation]") {
  IsolationRelay r([](Options& o) { o.slow_reader_timeout_ms = 200; });
  auto slow = r.connect();
  slow.conn->stalled = true;
  slow.session->on_message(R"(["REQ","s",{}])");
  REQUIRE(slow.conn->wait_closed());
  CHECK(slow.conn->count("[\"EOSE\"") == 0);
  CHECK(r.relay->stats().slow_consumer_disconnects == 1);

  auto healthy = r.connect();
  healthy.session->on_message(R"(["REQ","h",{"limit":3}])");
  REQUIRE(healthy.conn->wait_count("[\"EOSE\"", 1));
  CHECK(event_ids(healthy.conn->frames(), "h") == hex_ids(r.expected, 3));
}

TEST_CASE("a session may queue only so many queries, the rest are refused with rate-limited:",
          "[relay][isolation]") {
  IsolationRelay r([](Options& o) { o.max_queued_queries = 4; });
  auto c = r.connect();
  c.conn->stalled = true;
  c.session->on_message(R"(["REQ","first",{}])");
  REQUIRE(c.conn->wait_count("[\"EVENT\"", 1));  // running, then parked
  for (int i = 0; i < 10; ++i) {
    c.session->on_message(R"(["COUNT","c)" + std::to_string(i) + R"(",{}])");
  }
  // The refusals are queued behind whatever the reader thread is sending at that moment.
  REQUIRE(c.conn->wait_count(R"(["CLOSED","c)", 7));
  const std::vector<std::string> frames = c.conn->frames();
  CHECK(test::RecordingConnection::count(frames, R"(["CLOSED","c)") == 7);
  CHECK(std::any_of(frames.begin(), frames.end(), [](const std::string& f) {
    return f.find("rate-limited: too many queries waiting") != std::string::npos;
  }));
}

namespace {

using pipeline::CountJob;
using pipeline::QueryJob;
using pipeline::QueryScheduler;
using pipeline::SliceOutcome;

QueryJob named_job(std::string name) {
  CountJob j;
  j.sub_id = std::move(name);
  return j;
}

}  // namespace

TEST_CASE("the query scheduler takes sessions in turn, one slice each", "[relay][isolation]") {
  QueryScheduler scheduler(100000, 10s, 1);
  auto flood = scheduler.open_lane({});
  auto other = scheduler.open_lane({});
  constexpr int kFlood = 10000;
  for (int i = 0; i < kFlood; ++i) {
    REQUIRE(scheduler.submit(flood, named_job("f" + std::to_string(i))) ==
            QueryScheduler::Submit::kQueued);
  }
  // One flood job needs three slices.
  REQUIRE(scheduler.submit(flood, named_job("long")) == QueryScheduler::Submit::kQueued);
  REQUIRE(scheduler.submit(other, named_job("o1")) == QueryScheduler::Submit::kQueued);
  REQUIRE(scheduler.submit(other, named_job("o2")) == QueryScheduler::Submit::kQueued);
  CHECK(scheduler.size() == kFlood + 3);

  std::vector<std::string> ran;
  int long_slices = 0;
  scheduler.stop();  // work() then runs what is queued and returns
  scheduler.work(
      [&](QueryJob& job, pipeline::Clock::time_point) {
        const std::string& name = std::get<CountJob>(job).sub_id;
        ran.push_back(name);
        if (name == "long" && ++long_slices < 3) return SliceOutcome::kYield;
        return SliceOutcome::kDone;
      },
      10ms);
  REQUIRE(ran.size() == kFlood + 5);
  // The other session's first job ran after one flood slice, its second after another.
  CHECK(ran[0] == "f0");
  CHECK(ran[1] == "o1");
  CHECK(ran[2] == "f1");
  CHECK(ran[3] == "o2");
  // The yielding job took its three slices at the end, in turn with nobody.
  CHECK(std::vector<std::string>(ran.end() - 3, ran.end()) ==
        std::vector<std::string>{"long", "long", "long"});
  CHECK(scheduler.size() == 0);
}

TEST_CASE("a parked lane runs again only after resume, and expires past its deadline",
          "[relay][isolation]") {
  QueryScheduler scheduler(16, 100ms, 1);
  std::promise<void> expired;
  std::atomic<bool> room{false};
  pipeline::QueryLane::Hooks hooks;
  hooks.drained = [&] { return room.load(); };
  hooks.expired = [&] { expired.set_value(); };
  auto parked = scheduler.open_lane(hooks);
  // As a session does: the drain is recorded first, then resume() is called. A drain that
  // comes while the lane is still running its slice is caught by the drained() check the
  // scheduler makes as the lane parks.
  std::atomic<bool> drained{false};
  pipeline::QueryLane::Hooks resumed_hooks;
  resumed_hooks.drained = [&] { return drained.load(); };
  auto resumed = scheduler.open_lane(resumed_hooks);

  std::mutex mu;
  std::map<std::string, int> slices;
  std::promise<void> resumed_parked, resumed_done;
  std::thread worker([&] {
    scheduler.work(
        [&](QueryJob& job, pipeline::Clock::time_point) {
          const std::string name = std::get<CountJob>(job).sub_id;
          int n;
          {
            std::lock_guard lock(mu);
            n = ++slices[name];
          }
          if (name == "r") (n == 1 ? resumed_parked : resumed_done).set_value();
          return n == 1 ? SliceOutcome::kPark : SliceOutcome::kDone;
        },
        10ms);
  });
  REQUIRE(scheduler.submit(parked, named_job("p")) == QueryScheduler::Submit::kQueued);
  REQUIRE(scheduler.submit(resumed, named_job("r")) == QueryScheduler::Submit::kQueued);
  // "r" parks too, and resumes when told; "p" is never resumed and expires.
  REQUIRE(resumed_parked.get_future().wait_for(5s) == std::future_status::ready);
  drained = true;
  scheduler.resume(resumed);
  REQUIRE(resumed_done.get_future().wait_for(5s) == std::future_status::ready);
  REQUIRE(expired.get_future().wait_for(5s) == std::future_status::ready);
  {
    std::lock_guard lock(mu);
    CHECK(slices["p"] == 1);
    CHECK(slices["r"] == 2);
  }
  CHECK(scheduler.submit(parked, named_job("late")) == QueryScheduler::Submit::kStopped);
  scheduler.stop();
  worker.join();
}

TEST_CASE("expensive queries never take the last free reader", "[relay][isolation]") {
  // Two readers, at most one expensive slice at a time.
  QueryScheduler scheduler(16, 10s, 1);
  auto heavy1 = scheduler.open_lane({});
  auto heavy2 = scheduler.open_lane({});
  auto cheap = scheduler.open_lane({});
  auto count_job = [](std::string name, std::string_view filter) {
    CountJob j;
    j.sub_id = std::move(name);
    j.filters.push_back(parse_filter(filter).value());
    return QueryJob(std::move(j));
  };
  std::promise<void> release, heavy_started, cheap_done;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> heavy_running{0}, heavy_max{0};
  std::atomic<bool> h2_ran{false};
  auto run = [&](QueryJob& job, pipeline::Clock::time_point) {
    const std::string& name = std::get<CountJob>(job).sub_id;
    if (name == "cheap") {
      cheap_done.set_value();
      return SliceOutcome::kDone;
    }
    if (name == "h2") h2_ran = true;
    const int now_running = ++heavy_running;
    heavy_max = std::max(heavy_max.load(), now_running);
    if (name == "h1") {
      heavy_started.set_value();
      released.wait();
    }
    --heavy_running;
    return SliceOutcome::kDone;
  };
  std::thread r1([&] { scheduler.work(run, 10ms); });
  std::thread r2([&] { scheduler.work(run, 10ms); });
  // A count of everything and a search: both expensive.
  REQUIRE(scheduler.submit(heavy1, count_job("h1", "{}")) == QueryScheduler::Submit::kQueued);
  REQUIRE(heavy_started.get_future().wait_for(5s) == std::future_status::ready);
  REQUIRE(scheduler.submit(heavy2, count_job("h2", R"({"search":"x"})")) ==
          QueryScheduler::Submit::kQueued);
  REQUIRE(scheduler.submit(cheap, count_job("cheap", R"({"kinds":[1]})")) ==
          QueryScheduler::Submit::kQueued);
  // The cheap job runs on the second reader although h2 was queued first.
  REQUIRE(cheap_done.get_future().wait_for(5s) == std::future_status::ready);
  CHECK_FALSE(h2_ran.load());  // h2 waits while h1 holds the one expensive slot
  release.set_value();
  scheduler.stop();
  r1.join();
  r2.join();
  CHECK(heavy_max.load() == 1);
  CHECK(h2_ran.load());
  CHECK(scheduler.size() == 0);
}

namespace {

// Fails the test if close() is called while a send() is in progress; its first send() blocks
// until released, so that a test can close from another thread in the middle of it.
class ExclusiveConnection : public Connection {
 public:
  void send(Frame) override {
    in_send_ = true;
    if (sends_++ == 0) {
      entered_.set_value();
      released_.wait();
    }
    in_send_ = false;
  }
  void close(std::string_view) override {
    if (in_send_) overlapped_ = true;
    closes_++;
    closed_.set_value();
  }
  std::size_t queued_bytes() const override { return 0; }

  std::promise<void> entered_, closed_, release_;
  std::shared_future<void> released_ = release_.get_future().share();
  std::atomic<bool> in_send_{false}, overlapped_{false};
  std::atomic<int> sends_{0}, closes_{0};
};

}  // namespace

TEST_CASE("Connection::close never runs while a send is in progress", "[relay][isolation]") {
  auto conn = std::make_shared<ExclusiveConnection>();
  pipeline::Outbox outbox(conn, 1 << 20, Log());
  std::atomic<int> on_closed{0};
  outbox.set_on_closed([&](bool slow) {
    CHECK(slow);
    ++on_closed;
  });
  std::thread flusher([&] {
    outbox.send(Frame(std::string("first")));
    outbox.send(Frame(std::string("second")));
  });
  conn->entered_.get_future().wait();
  // The flusher is inside send(): the close is left to it.
  CHECK(outbox.close_slow_consumer());
  CHECK_FALSE(outbox.close_slow_consumer());  // once
  CHECK(conn->closes_.load() == 0);
  CHECK(outbox.closed());
  conn->release_.set_value();
  REQUIRE(conn->closed_.get_future().wait_for(5s) == std::future_status::ready);
  flusher.join();
  CHECK_FALSE(conn->overlapped_.load());
  CHECK(conn->closes_.load() == 1);
  CHECK(conn->sends_.load() == 1);  // nothing is sent once closed
  CHECK(on_closed.load() == 1);
}
