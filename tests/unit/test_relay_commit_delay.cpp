// Options::commit_delay_micros: a group commit held open for more events while other clients
// write, and never for a client that waits for each OK.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage_wrapper.hpp"
#include "test_util.hpp"
#include "util/thread_priority.hpp"

using namespace relaycore;
using namespace std::chrono_literals;
using test::event_frame;
using test::Harness;
using test::now;

namespace {

std::vector<EventPtr> notes(const std::string& label, int n) {
  std::vector<EventPtr> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(test::signed_event(test::alice(), 1, now(), label + std::to_string(i)));
  }
  return out;
}

std::uint64_t commits(const Harness& h) { return h.relay->stats().write_batches; }

// Waits until `n` verified events wait for the writer; false after 10 s.
bool wait_write_queue(const Harness& h, std::uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (h.relay->stats().write_queue < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// The start of the accepting OK for `e`.
std::string accepted(const EventPtr& e) {
  return "[\"OK\",\"" + std::string(e->id_hex()) + "\",true";
}

// The id of this process's thread named `name`, waiting up to 10 s for it to be named; "" if
// none is.
std::string thread_id_named(const std::string& name) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string comm_name;
      if (std::getline(comm, comm_name) && comm_name == name) {
        return task.path().filename().string();
      }
    }
    std::this_thread::sleep_for(1ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return "";
}

// Storage whose upkeep always has another step to take, as a large search index's merging can
// for a long while: the writer then looks at its queue between steps without waiting.
class BusyUpkeep final : public StorageWrapper {
 public:
  explicit BusyUpkeep(std::shared_ptr<Storage> target) : StorageWrapper(std::move(target)) {}
  Result<bool> maintain() override {
    steps.fetch_add(1);
    return true;
  }
  std::atomic<std::uint64_t> steps{0};
};

// Two clients' events are gathered into one commit by a delay of 3 s: the event sent first is
// alone in the queue for 100 ms, so without the delay it would be a commit of its own.
// `settle` runs between the clients' first commit and the gathered one.
void check_gathers(
    Harness& h, const std::function<void()>& settle = [] {}) {
  auto first = h.connect();
  auto second = h.connect();

  // Other clients write at once: the writer is held at the audit of a first commit while two
  // more events queue, so that its next commit holds two.
  const std::vector<EventPtr> warm = notes("warm ", 3);
  h.audit->set_open(false);
  first.session->on_message(event_frame(warm[0]));
  REQUIRE(h.audit->wait_blocked());
  first.session->on_message(event_frame(warm[1]));
  second.session->on_message(event_frame(warm[2]));
  REQUIRE(wait_write_queue(h, 2));
  h.audit->set_open(true);
  REQUIRE(first.conn->wait_count("[\"OK\"", 2, 10s));
  REQUIRE(second.conn->wait_count("[\"OK\"", 1, 10s));
  const std::uint64_t before = commits(h);
  settle();

  const std::vector<EventPtr> events = notes("gathered ", 5);
  first.session->on_message(event_frame(events[0]));
  std::this_thread::sleep_for(100ms);
  for (std::size_t i = 1; i < events.size(); ++i) {
    second.session->on_message(event_frame(events[i]));
  }
  REQUIRE(first.conn->wait_count("[\"OK\"", 3, 10s));
  REQUIRE(second.conn->wait_count("[\"OK\"", 5, 10s));
  CHECK(commits(h) == before + 1);
  CHECK(first.conn->count(accepted(events[0])) == 1);
  for (std::size_t i = 1; i < events.size(); ++i) {
    CHECK(second.conn->count(accepted(events[i])) == 1);
  }
}

}  // namespace

// Broken by a writer that commits at once whatever the delay.
TEST_CASE("A commit delay gathers concurrent clients' events into one commit",
          "[relay][commit-delay]") {
  Harness h(DispatchMode::kDeferred, [](Options& o) { o.commit_delay_micros = 3'000'000; });
  check_gathers(h);
}

// Broken by a writer that takes an empty look at its queue between upkeep steps for a sign that
// no one else is writing: the delay then never applied while upkeep was pending.
TEST_CASE("A commit delay gathers events while storage upkeep is pending",
          "[relay][commit-delay]") {
  std::shared_ptr<BusyUpkeep> storage;
  Harness h(DispatchMode::kDeferred, [&](Options& o) {
    o.commit_delay_micros = 3'000'000;
    storage = std::make_shared<BusyUpkeep>(o.storage);
    o.storage = storage;
  });
  // Two more upkeep steps: the writer has found its queue empty between steps at least once.
  check_gathers(h, [&] {
    const std::uint64_t steps = storage->steps.load();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (storage->steps.load() < steps + 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    REQUIRE(storage->steps.load() >= steps + 2);
  });
}

// Broken by a delay applied to every commit: each OK would come a minute late, past the wait.
TEST_CASE("A client that waits for each OK is not held by the commit delay",
          "[relay][commit-delay]") {
  Harness h(DispatchMode::kDeferred, [](Options& o) { o.commit_delay_micros = 60'000'000; });
  auto client = h.connect();
  const std::vector<EventPtr> events = notes("lone ", 3);
  for (std::size_t i = 0; i < events.size(); ++i) {
    client.session->on_message(event_frame(events[i]));
    REQUIRE(client.conn->wait_count("[\"OK\"", i + 1, 10s));
  }
  CHECK(commits(h) == events.size());
}

// Broken by a writer that sleeps through the delay with the system's timer slack (50 us by
// default on Linux): every held commit, and its OKs, would come that much later than the delay
// says.
TEST_CASE("The writer sleeps through a commit delay with tight timer slack",
          "[relay][commit-delay]") {
  Harness h(DispatchMode::kDeferred, [](Options& o) { o.commit_delay_micros = 150; });
  // The writer names itself once its slack is set.
  const std::string tid = thread_id_named("rc-write");
  REQUIRE_FALSE(tid.empty());
  std::ifstream in("/proc/" + tid + "/timerslack_ns");
  unsigned long slack = 0;
  REQUIRE(in >> slack);
  CHECK(slack == kTightTimerSlackNanos);
}
