// CallbackExecutor on its own: tasks run in order on the callback thread, and within a
// CallbackBatch (or a FlushScope, which is one) the thread is woken once, as the batch ends, not
// once per task.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "pipeline/callback_executor.hpp"
#include "pipeline/outbox.hpp"
#include "test_util.hpp"

using relaycore::Log;
using relaycore::pipeline::CallbackBatch;
using relaycore::pipeline::CallbackExecutor;
using relaycore::pipeline::FlushScope;
using relaycore::pipeline::Outbox;
using namespace std::chrono_literals;

namespace {

// Waits until everything posted so far has run and the thread is asleep again for want of work.
// The thread counts a sleep under its lock just before it waits, so a count above the one the
// last task saw means it is waiting. Returns the count.
std::uint64_t drain(CallbackExecutor& executor) {
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> seen{0};
  REQUIRE(executor.post([&] {
    seen = executor.sleeps();
    done = true;
  }));
  REQUIRE(relaycore::test::poll_until([&] { return done.load(); }, 10s));
  REQUIRE(relaycore::test::poll_until([&] { return executor.sleeps() > seen.load(); }, 10s));
  return executor.sleeps();
}

}  // namespace

TEST_CASE("callback executor: tasks run in the order posted, on the callback thread") {
  CallbackExecutor executor{Log()};
  std::mutex mu;
  std::vector<int> order;
  std::atomic<int> on_thread{0};
  for (int i = 0; i < 50; ++i) {
    REQUIRE(executor.post([&, i] {
      if (executor.on_callback_thread()) ++on_thread;
      std::lock_guard lock(mu);
      order.push_back(i);
    }));
  }
  REQUIRE(relaycore::test::poll_until([&] { return on_thread.load() == 50; }, 10s));
  std::lock_guard lock(mu);
  for (int i = 0; i < 50; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("callback executor: a CallbackBatch wakes the callback thread once, as it ends") {
  CallbackExecutor executor{Log()};
  const std::uint64_t asleep = drain(executor);
  std::atomic<int> ran{0};
  {
    CallbackBatch batch;
    for (int i = 0; i < 100; ++i) REQUIRE(executor.post([&] { ++ran; }));
    {
      CallbackBatch nested;  // only the outermost batch wakes the thread
      REQUIRE(executor.post([&] { ++ran; }));
    }
    // Nothing has woken the sleeping thread yet, so nothing has run.
    CHECK_FALSE(relaycore::test::poll_until([&] { return ran.load() > 0; }, 200ms));
  }
  REQUIRE(relaycore::test::poll_until([&] { return ran.load() == 101; }, 10s));
  // One wake-up ran all 101, then the thread slept again: one sleep more, not one per task.
  REQUIRE(relaycore::test::poll_until([&] { return executor.sleeps() > asleep; }, 10s));
  CHECK(executor.sleeps() == asleep + 1);
}

TEST_CASE("callback executor: a batch on one thread does not hold back another thread's posts") {
  CallbackExecutor executor{Log()};
  drain(executor);
  std::atomic<bool> held{false};
  std::atomic<bool> other{false};
  CallbackBatch batch;
  REQUIRE(executor.post([&] { held = true; }));
  std::thread poster([&] { REQUIRE(executor.post([&] { other = true; })); });
  poster.join();
  // The other thread's post wakes the executor, which runs both in order.
  REQUIRE(relaycore::test::poll_until([&] { return other.load(); }, 10s));
  CHECK(held.load());
}

namespace {

// An in-process connection as CallbackConnection is one: each batch of frames it is handed is
// posted to the callback thread. It then waits a while for that task to run, which it does only
// if the post woke the thread.
class PostingConnection : public relaycore::Connection {
 public:
  PostingConnection(CallbackExecutor& executor, std::atomic<int>& ran)
      : executor_(executor), ran_(ran) {}
  void send(relaycore::Frame frame) override { send_batch(std::span<relaycore::Frame>(&frame, 1)); }
  void send_batch(std::span<relaycore::Frame>) override {
    const int before = ran_.load();
    REQUIRE(executor_.post([this] { ++ran_; }));
    relaycore::test::poll_until([&] { return ran_.load() > before; }, 50ms);
  }
  void close(std::string_view) override {}
  std::size_t queued_bytes() const override { return 0; }

 private:
  CallbackExecutor& executor_;
  std::atomic<int>& ran_;
};

}  // namespace

TEST_CASE("callback executor: a FlushScope's flushes to in-process connections wake it once") {
  CallbackExecutor executor{Log()};
  const std::uint64_t asleep = drain(executor);
  std::atomic<int> ran{0};
  std::vector<std::shared_ptr<Outbox>> outboxes;
  for (int i = 0; i < 5; ++i) {
    outboxes.push_back(std::make_shared<Outbox>(std::make_shared<PostingConnection>(executor, ran),
                                                1 << 20, Log()));
  }
  {
    FlushScope scope;
    for (const auto& outbox : outboxes) outbox->send(relaycore::Frame("x"));
  }
  // The five flushes ran as the scope ended, before its callback batch did: one wake-up.
  REQUIRE(relaycore::test::poll_until([&] { return ran.load() == 5; }, 10s));
  REQUIRE(relaycore::test::poll_until([&] { return executor.sleeps() > asleep; }, 10s));
  CHECK(executor.sleeps() == asleep + 1);
}
