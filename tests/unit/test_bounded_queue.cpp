// BoundedQueue on its own: its capacity and the push that waits for room, close(), batch pops
// with and without a timeout, and the wake-ups that let waiting producers go on.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pipeline/bounded_queue.hpp"

using relaycore::pipeline::BoundedQueue;
using namespace std::chrono_literals;

namespace {

// Runs `f` on a thread of its own. Before the thread is joined the queue is closed and emptied
// (each batch taken wakes waiting producers again), so a test that fails while the thread
// waits on the queue ends instead of hanging.
template <typename T, typename W = relaycore::pipeline::OnePlace>
class Worker {
 public:
  Worker(BoundedQueue<T, W>& queue, std::function<void()> f)
      : queue_(queue), finished_(done_.get_future()), thread_([this, f = std::move(f)] {
          f();
          done_.set_value();
        }) {}
  ~Worker() {
    queue_.close();
    std::vector<T> dropped;
    while (queue_.pop_batch_for(dropped, queue_.capacity(), 0ms) && !dropped.empty()) {
    }
    thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // True once `f` has returned; false if it has not within `timeout`.
  bool finished(std::chrono::milliseconds timeout = 5000ms) {
    return finished_.wait_for(timeout) == std::future_status::ready;
  }

 private:
  BoundedQueue<T, W>& queue_;
  std::promise<void> done_;
  std::future<void> finished_;
  std::thread thread_;
};

// Set by a thread just before it calls into the queue, so the test waits for that call to be
// under way rather than for time to pass.
struct Signal {
  std::promise<void> promise;
  std::future<void> future = promise.get_future();
  void set() { promise.set_value(); }
  bool wait() { return future.wait_for(5s) == std::future_status::ready; }
};

// Starts a consumer running `pop` on an empty queue, pushes `value` once it is under way, and
// returns what `pop` took; nothing if it did not return true within the worker's patience.
std::vector<int> taken_after_push(
    const std::function<bool(BoundedQueue<int>&, std::vector<int>&)>& pop, int value) {
  BoundedQueue<int> q(4);
  Signal popping;
  std::vector<int> got;
  std::atomic<bool> ok{false};
  bool finished = false;
  {
    Worker<int> consumer(q, [&] {
      popping.set();
      ok = pop(q, got);
    });
    finished = popping.wait() && q.push(value) && consumer.finished();
  }
  return finished && ok.load() ? got : std::vector<int>{};
}

// No call tells whether a thread is already waiting inside the queue, so the tests that need
// one waiting run their scenario this many times: a broken wake-up shows in every round where
// the thread got there first, while a working queue passes every round whatever the timing.
constexpr int kRounds = 50;

}  // namespace

// Broken by a queue that forgets its capacity, or one that takes 0 literally and never admits
// an item.
TEST_CASE("BoundedQueue holds up to its capacity, and a capacity of 0 means 1",
          "[pipeline][queue]") {
  BoundedQueue<int> q(3);
  CHECK(q.capacity() == 3);
  for (int i = 0; i < 3; ++i) {
    int v = i;
    REQUIRE(q.push(v));
  }
  CHECK(q.size() == 3);
  BoundedQueue<int> one(0);
  CHECK(one.capacity() == 1);
  int v = 7;
  CHECK(one.push(v));
  CHECK(one.size() == 1);
}

// Broken by a push that does not wait for room: the item would be admitted while the queue is
// full, and the size after the push would pass the capacity.
TEST_CASE("BoundedQueue push on a full queue waits for a pop to make room", "[pipeline][queue]") {
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    BoundedQueue<std::string> q(2);
    for (std::string s : {"a", "b"}) REQUIRE(q.push(s));
    Signal pushing;
    std::atomic<bool> pushed{false};
    std::atomic<std::size_t> size_after_push{0};
    Worker<std::string> producer(q, [&] {
      std::string c = "c";
      pushing.set();
      pushed = q.push(c);
      size_after_push = q.size();
    });
    REQUIRE(pushing.wait());
    std::string out;
    REQUIRE(q.pop(out));
    CHECK(out == "a");
    REQUIRE(producer.finished());
    CHECK(pushed.load());
    CHECK(size_after_push.load() == 2);
    REQUIRE(q.pop(out));
    CHECK(out == "b");
    REQUIRE(q.pop(out));
    CHECK(out == "c");
  }
}

// Broken by a close() that does not wake a waiting producer, that admits items after it, that
// consumes the refused item, or that throws away what is already queued.
TEST_CASE("BoundedQueue close refuses new items, keeps them intact, and lets consumers drain",
          "[pipeline][queue]") {
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    BoundedQueue<std::unique_ptr<int>> q(1);
    auto first = std::make_unique<int>(1);
    REQUIRE(q.push(first));
    CHECK(first == nullptr);  // moved in

    Signal pushing;
    std::atomic<bool> pushed{true};
    std::atomic<bool> kept{false};
    Worker<std::unique_ptr<int>> producer(q, [&] {
      auto second = std::make_unique<int>(2);
      pushing.set();
      pushed = q.push(second);  // the queue is full: waits, then is refused
      kept = second != nullptr && *second == 2;
    });
    REQUIRE(pushing.wait());
    q.close();
    REQUIRE(producer.finished());
    CHECK_FALSE(pushed.load());
    CHECK(kept.load());
    auto third = std::make_unique<int>(3);
    CHECK_FALSE(q.push(third));
    CHECK(third != nullptr);

    std::vector<std::unique_ptr<int>> out;
    REQUIRE(q.pop_batch(out, 10));
    REQUIRE(out.size() == 1);
    CHECK(*out[0] == 1);
    CHECK_FALSE(q.pop_batch(out, 10));
    CHECK(out.empty());
    CHECK_FALSE(q.pop_batch_for(out, 10, 0ms));
    std::unique_ptr<int> one;
    CHECK_FALSE(q.pop(one));
  }
}

// Broken by a close() that leaves consumers waiting on an empty queue.
TEST_CASE("BoundedQueue close wakes consumers waiting on an empty queue", "[pipeline][queue]") {
  BoundedQueue<int> q(4);
  Signal popping, batching;
  std::atomic<bool> popped{true}, batched{true};
  Worker<int> pop_consumer(q, [&] {
    int v = 0;
    popping.set();
    popped = q.pop(v);
  });
  Worker<int> batch_consumer(q, [&] {
    std::vector<int> out;
    batching.set();
    batched = q.pop_batch(out, 4);
  });
  REQUIRE(popping.wait());
  REQUIRE(batching.wait());
  q.close();
  REQUIRE(pop_consumer.finished());
  REQUIRE(batch_consumer.finished());
  CHECK_FALSE(popped.load());
  CHECK_FALSE(batched.load());
}

// Broken by a batch that exceeds its maximum, reorders items, or appends to stale contents.
TEST_CASE("BoundedQueue pop_batch takes up to max items in order into a cleared vector",
          "[pipeline][queue]") {
  BoundedQueue<int> q(10);
  for (int i = 0; i < 7; ++i) {
    int v = i;
    REQUIRE(q.push(v));
  }
  std::vector<int> out = {99};
  REQUIRE(q.pop_batch(out, 3));
  CHECK(out == std::vector<int>{0, 1, 2});
  REQUIRE(q.pop_batch(out, 10));
  CHECK(out == std::vector<int>{3, 4, 5, 6});
  CHECK(q.size() == 0);
}

// Broken by a take_more that clears what the caller holds, takes past max or waits when the
// queue is empty.
TEST_CASE("BoundedQueue take_more appends up to max items without waiting", "[pipeline][queue]") {
  BoundedQueue<int> q(10);
  std::vector<int> out = {7};
  q.take_more(out, 4);  // nothing queued: returns at once, out untouched
  CHECK(out == std::vector<int>{7});
  for (int i = 0; i < 5; ++i) {
    int v = i;
    REQUIRE(q.push(v));
  }
  q.take_more(out, 4);
  CHECK(out == std::vector<int>{7, 0, 1, 2});
  q.take_more(out, 10);
  CHECK(out == std::vector<int>{7, 0, 1, 2, 3, 4});
  CHECK(q.size() == 0);
}

// Broken by a wait_closed_for that close() does not wake (the writer's commit delay would then
// hold a closing relay for the whole delay) or that reports an open queue closed.
TEST_CASE("BoundedQueue wait_closed_for ends at close", "[pipeline][queue]") {
  BoundedQueue<int> q(4);
  CHECK_FALSE(q.wait_closed_for(1ms));
  int v = 1;
  REQUIRE(q.push(v));
  CHECK_FALSE(q.wait_closed_for(1ms));
  const auto start = std::chrono::steady_clock::now();
  std::thread closer([&] { q.close(); });
  CHECK(q.wait_closed_for(60s));
  closer.join();
  CHECK(std::chrono::steady_clock::now() - start < 30s);
}

// Broken by a pop_batch that returns empty-handed, or a pop_batch_for that is not woken by a
// push (it would sleep out its whole timeout) or that does not give up when nothing comes.
TEST_CASE("BoundedQueue pop_batch waits for an item, and pop_batch_for gives up empty",
          "[pipeline][queue]") {
  BoundedQueue<int> q(4);
  std::vector<int> out = {42};
  CHECK(q.pop_batch_for(out, 4, 0ms));  // nothing there: true, and nothing taken
  CHECK(out.empty());

  auto batch = [](BoundedQueue<int>& queue, std::vector<int>& taken) {
    return queue.pop_batch(taken, 4);
  };
  auto batch_for = [](BoundedQueue<int>& queue, std::vector<int>& taken) {
    return queue.pop_batch_for(taken, 4, 60s);
  };
  CHECK(taken_after_push(batch, 7) == std::vector<int>{7});
  CHECK(taken_after_push(batch_for, 8) == std::vector<int>{8});
}

// Broken by a batch pop that does not wake the producers waiting on a full queue.
TEST_CASE("BoundedQueue batch pops wake every waiting producer", "[pipeline][queue]") {
  constexpr int kProducers = 4;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    BoundedQueue<int> q(kProducers);
    for (int i = 0; i < kProducers; ++i) {
      int v = i;
      REQUIRE(q.push(v));
    }
    std::vector<Signal> pushing(kProducers);
    std::atomic<int> admitted{0};
    std::vector<std::unique_ptr<Worker<int>>> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.push_back(std::make_unique<Worker<int>>(q, [&, p] {
        int v = 100 + p;
        pushing[static_cast<std::size_t>(p)].set();
        if (q.push(v)) ++admitted;
      }));
    }
    for (Signal& s : pushing) REQUIRE(s.wait());
    std::vector<int> out;
    REQUIRE(q.pop_batch(out, kProducers));
    CHECK(out == std::vector<int>{0, 1, 2, 3});
    for (auto& w : producers) REQUIRE(w->finished());
    CHECK(admitted.load() == kProducers);
    REQUIRE(q.pop_batch(out, kProducers));
    std::sort(out.begin(), out.end());
    CHECK(out == std::vector<int>{100, 101, 102, 103});
  }
}

// Broken by a lost wake-up (producers left waiting while the consumer waits on an empty
// queue), a lost or repeated item, an item overtaking another from the same producer, or the
// queue growing past its capacity.
TEST_CASE("BoundedQueue under several producers loses nothing and keeps each one's order",
          "[pipeline][queue]") {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 2000;
  enum class Consumer { kPop, kPopBatch, kPopBatchFor };
  for (std::size_t capacity : {std::size_t{1}, std::size_t{2}, std::size_t{8}}) {
    for (Consumer mode : {Consumer::kPop, Consumer::kPopBatch, Consumer::kPopBatchFor}) {
      INFO("capacity " << capacity << ", consumer " << static_cast<int>(mode));
      BoundedQueue<std::pair<int, int>> q(capacity);
      std::atomic<bool> over_capacity{false};
      std::vector<int> next(kProducers, 0);
      bool in_order = true;
      int received = 0;
      Worker<std::pair<int, int>> consumer(q, [&] {
        auto take = [&](const std::pair<int, int>& item) {
          const auto p = static_cast<std::size_t>(item.first);
          in_order = in_order && item.second == next[p];
          ++next[p];
          ++received;
        };
        std::vector<std::pair<int, int>> batch;
        while (received < kProducers * kPerProducer) {
          if (q.size() > capacity) over_capacity = true;
          if (mode == Consumer::kPop) {
            std::pair<int, int> item;
            if (!q.pop(item)) return;
            take(item);
            continue;
          }
          const bool open =
              mode == Consumer::kPopBatch ? q.pop_batch(batch, 3) : q.pop_batch_for(batch, 3, 1ms);
          if (!open) return;
          for (const auto& item : batch) take(item);
        }
      });
      std::vector<std::unique_ptr<Worker<std::pair<int, int>>>> producers;
      for (int p = 0; p < kProducers; ++p) {
        producers.push_back(std::make_unique<Worker<std::pair<int, int>>>(q, [&, p] {
          for (int i = 0; i < kPerProducer; ++i) {
            std::pair<int, int> item{p, i};
            if (!q.push(item)) return;
            if (q.size() > capacity) over_capacity = true;
          }
        }));
      }
      REQUIRE(consumer.finished(30s));
      CHECK(received == kProducers * kPerProducer);
      CHECK(in_order);
      CHECK(next == std::vector<int>(kProducers, kPerProducer));
      CHECK_FALSE(over_capacity.load());
    }
  }
}

// Broken by a reservation that does not count against the capacity (a blocking producer would
// take the held place), by try_reserve() waiting or succeeding on a full queue, or by a
// push_reserved() that waits.
TEST_CASE("BoundedQueue try_reserve holds a place that push_reserved fills without waiting",
          "[pipeline][queue]") {
  BoundedQueue<int> q(2);
  int a = 1;
  REQUIRE(q.push(a));
  REQUIRE(q.try_reserve());
  CHECK_FALSE(q.try_reserve());  // one item and one held place: full

  // A blocking producer waits: the held place is not its to take.
  Signal pushing;
  std::atomic<bool> pushed{false};
  Worker<int> producer(q, [&] {
    int c = 3;
    pushing.set();
    pushed = q.push(c);
  });
  REQUIRE(pushing.wait());
  CHECK_FALSE(producer.finished(50ms));
  CHECK_FALSE(pushed.load());

  int b = 2;
  REQUIRE(q.push_reserved(b));
  CHECK(q.size() == 2);
  std::vector<int> out;
  REQUIRE(q.pop_batch(out, 2));
  CHECK(out == std::vector<int>{1, 2});
  REQUIRE(producer.finished());
  CHECK(pushed.load());
  REQUIRE(q.pop_batch(out, 2));
  CHECK(out == std::vector<int>{3});
}

// Broken by an unreserve() that keeps the place (the queue would shrink for good) or that does
// not wake a producer waiting for it.
TEST_CASE("BoundedQueue unreserve gives the place back to a waiting producer",
          "[pipeline][queue]") {
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    BoundedQueue<int> q(1);
    REQUIRE(q.try_reserve());
    Signal pushing;
    std::atomic<bool> pushed{false};
    Worker<int> producer(q, [&] {
      int v = 5;
      pushing.set();
      pushed = q.push(v);
    });
    REQUIRE(pushing.wait());
    q.unreserve();
    REQUIRE(producer.finished());
    CHECK(pushed.load());
    CHECK(q.size() == 1);
  }
}

// Broken by a reservation that survives close() as an accepted item, or a closed queue that
// still hands out places.
TEST_CASE("BoundedQueue refuses reservations and reserved pushes once closed",
          "[pipeline][queue]") {
  BoundedQueue<std::unique_ptr<int>> q(2);
  REQUIRE(q.try_reserve());
  q.close();
  CHECK_FALSE(q.try_reserve());
  auto item = std::make_unique<int>(1);
  CHECK_FALSE(q.push_reserved(item));
  CHECK(item != nullptr);
  std::vector<std::unique_ptr<int>> out;
  CHECK_FALSE(q.pop_batch_for(out, 2, 0ms));
}

// A queue of strings that weighs each by its length.
struct Length {
  std::size_t operator()(const std::string& s) const noexcept { return s.size(); }
};

// Broken by a queue that counts items rather than what they weigh (the producer would not
// wait), that forgets to take a popped item's weight off (it would never resume), or that
// refuses an item heavier than the room left while there is some.
TEST_CASE("BoundedQueue with a Weigh is full once its items weigh the capacity",
          "[pipeline][queue]") {
  BoundedQueue<std::string, Length> q(10);
  for (std::string s : {"aaaa", "bbbbbb"}) REQUIRE(q.push(s));
  CHECK(q.size() == 10);
  Signal pushing;
  std::atomic<bool> pushed{false};
  Worker<std::string, Length> producer(q, [&] {
    std::string c = "c";
    pushing.set();
    pushed = q.push(c);
  });
  REQUIRE(pushing.wait());
  // Two items weighing 10 fill it: the producer must still be waiting.
  CHECK_FALSE(producer.finished(200ms));
  std::string out;
  REQUIRE(q.pop(out));
  CHECK(out == "aaaa");
  REQUIRE(producer.finished());
  CHECK(pushed.load());
  // Weighing 7 of 10, it takes an item of 20, and is then full.
  std::string heavy(20, 'h');
  REQUIRE(q.try_reserve());
  q.unreserve();
  REQUIRE(q.push(heavy));
  CHECK_FALSE(q.try_reserve());
  std::vector<std::string> all;
  REQUIRE(q.pop_batch_for(all, 10, 0ms));
  CHECK(all == std::vector<std::string>{"bbbbbb", "c", std::string(20, 'h')});
  CHECK(q.try_reserve());
  q.unreserve();
}
