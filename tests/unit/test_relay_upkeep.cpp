// The writer's upkeep steps (Storage::maintain): run one after another while nothing is
// queued, never ahead of queued events, and on SQLite they merge the search index.
#include <catch2/catch.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/sqlite.hpp"
#include "relaycore/storage_wrapper.hpp"
#include "sqlite_raw_db.hpp"
#include "test_audit_util.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;

namespace {

// A storage whose upkeep steps each wait for a leave from the test and say when one is
// waiting. Each step reports more to do until `steps` have run. It notes the highest seq stored
// when each step starts.
class GatedUpkeep final : public StorageWrapper {
 public:
  GatedUpkeep(std::shared_ptr<Storage> target, int steps)
      : StorageWrapper(std::move(target)), steps_(steps) {}

  Result<bool> maintain() override {
    const std::uint64_t seq = max_seq().value();
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return leaves_ > 0; });
    --leaves_;
    --waiting_;
    seen_seqs_.push_back(seq);
    cv_.notify_all();
    return static_cast<int>(seen_seqs_.size()) < steps_;
  }

  void allow(int n) {
    std::lock_guard lock(mu_);
    leaves_ += n;
    cv_.notify_all();
  }
  bool wait_until_waiting() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return waiting_ > 0; });
  }
  bool wait_until_done(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return seen_seqs_.size() >= n; });
  }
  std::vector<std::uint64_t> seen_seqs() {
    std::lock_guard lock(mu_);
    return seen_seqs_;
  }

 private:
  const int steps_;
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  int leaves_ = 0;
  std::vector<std::uint64_t> seen_seqs_;
};

}  // namespace

// Broken by a writer that takes a step only at its once-a-second wake while idle (200 steps
// would take over three minutes), or that stops after the first step.
TEST_CASE("an idle writer runs the storage's upkeep steps one after another until none is left",
          "[relay][upkeep]") {
  auto storage = std::make_shared<GatedUpkeep>(new_memory_storage(), 200);
  storage->allow(1000);
  Options o;
  o.storage = storage;
  auto relay = Relay::open(std::move(o)).value();
  REQUIRE(storage->wait_until_done(200));
  REQUIRE(relay->shutdown().is_ok());
}

// Broken by a writer that runs its pending upkeep steps before the events queued meanwhile.
TEST_CASE("new events are committed between upkeep steps", "[relay][upkeep]") {
  auto storage = std::make_shared<GatedUpkeep>(new_memory_storage(), 1000);
  Options o;
  o.storage = storage;
  o.verify_threads = 1;
  auto relay = Relay::open(std::move(o)).value();
  REQUIRE(storage->wait_until_waiting());

  // An event arrives during a step; the step ends, and the event is committed and answered
  // before the next step.
  test::PendingOk fresh(*relay, test::signed_event(test::bob(), 1, test::now(), "fresh"));
  // Verified and queued for the writer, which is still in the step.
  REQUIRE(test::poll_until([&] { return relay->stats().write_queue == 1; }, 10s));
  storage->allow(1);
  std::optional<OkResult> answer = fresh.wait(10s);
  REQUIRE(answer);
  CHECK(answer->accepted);
  REQUIRE(storage->wait_until_waiting());
  const std::vector<std::uint64_t> seqs = storage->seen_seqs();
  REQUIRE(seqs.size() == 1);
  CHECK(seqs[0] == 0);
  storage->allow(1);
  REQUIRE(storage->wait_until_done(2));
  CHECK(storage->seen_seqs()[1] == 1);
  storage->allow(100000);
  REQUIRE(relay->shutdown().is_ok());
}

namespace {

// SQLite storage that counts the upkeep steps that found nothing left to do.
class UpkeepWatch final : public StorageWrapper {
 public:
  explicit UpkeepWatch(std::shared_ptr<Storage> target) : StorageWrapper(std::move(target)) {}

  Result<bool> maintain() override {
    Result<bool> more = StorageWrapper::maintain();
    std::lock_guard lock(mu_);
    if (more.is_ok() && !*more) ++finished_;
    cv_.notify_all();
    return more;
  }
  int finished() {
    std::lock_guard lock(mu_);
    return finished_;
  }
  bool wait_until_finished(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return finished_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int finished_ = 0;
};

}  // namespace

// Broken by a SQLite storage whose commits leave a segment each that nothing merges (automerge
// off without maintain() merging), or by a writer that does not call maintain() when idle.
TEST_CASE("an idle relay on SQLite merges the search index its commits wrote",
          "[relay][upkeep][sqlite]") {
  test::TempDir dir;
  const std::string path = dir.file("relay.db");
  SqliteOptions so;
  so.path = path;
  so.cache_kib = 2048;
  auto storage = std::make_shared<UpkeepWatch>(new_sqlite_storage(so).value());
  Options o;
  o.storage = storage;
  auto relay = Relay::open(std::move(o)).value();
  // One commit each.
  for (int i = 0; i < 24; ++i) {
    REQUIRE(relay
                ->submit(test::signed_event(test::alice(), 1, test::now(),
                                            "merged note " + std::to_string(i)))
                .accepted);
  }
  // A step that finds nothing left to do after the last commit.
  REQUIRE(storage->wait_until_finished(storage->finished() + 1));
  test::RawDb db(path);
  const test::SearchStructure merged = test::search_structure(db);
  for (std::uint64_t n : merged.levels) CHECK(n < 4);
  db.exec("INSERT INTO events_search (events_search) VALUES ('integrity-check')");
  Filter search;
  search.search = "merged note";
  CHECK(relay->count({search}).value() == 24);
  REQUIRE(relay->shutdown().is_ok());
}
