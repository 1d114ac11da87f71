// Every way an event leaves the store (replacement, NIP-09 deletion, NIP-40 expiration purge,
// the operator's erase, each retention rule) writes an audit record and reaches the change
// listeners with its reason.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage_wrapper.hpp"
#include "test_audit_util.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;

namespace {

// Memory storage whose expiration purges run at a time the test sets instead of the wall
// clock, so that a purge removes an event when the test says and not a second earlier. Its
// size is a kilobyte per stored event, so that a size limit removes a number of events the
// test knows.
class ClockedStorage final : public StorageWrapper {
 public:
  ClockedStorage() : StorageWrapper(new_memory_storage()) {}

  Result<std::vector<RemovedEvent>> purge_expired(std::int64_t /*now*/) override {
    return StorageWrapper::purge_expired(clock.load());
  }

  Result<std::uint64_t> size_bytes() override {
    Result<std::uint64_t> events = count({Filter()}, QueryRequest());
    if (!events) return events;
    return *events * kEventBytes;
  }

  static constexpr std::uint64_t kEventBytes = 1000;
  std::atomic<std::int64_t> clock{0};
};

// What a change listener saw, for the test thread to wait on.
struct Removals {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<RemovedEvent> removed;
  // How many removals each batch carried.
  std::vector<std::size_t> batch_sizes;
  bool gap = false;

  ChangeListener listener() {
    return [this](const ChangeBatch& batch) {
      std::lock_guard lock(mu);
      for (const RemovedEvent& r : batch.removed) removed.push_back(r);
      if (!batch.removed.empty()) batch_sizes.push_back(batch.removed.size());
      gap = gap || batch.gap;
      cv.notify_all();
    };
  }
  // Waits until the listener has seen `id` removed; false on timeout.
  bool wait_for(const EventId& id) {
    return wait_until([&] {
      return std::any_of(removed.begin(), removed.end(),
                         [&](const RemovedEvent& r) { return r.id == id; });
    });
  }
  // Waits until `done` holds, called with mu held; false on timeout.
  bool wait_until(const std::function<bool()>& done) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, done);
  }
  std::size_t removed_by(RetentionRule rule) {
    return static_cast<std::size_t>(std::count_if(
        removed.begin(), removed.end(), [&](const RemovedEvent& r) { return r.rule == rule; }));
  }
};

// One event for each way out of the store but retention, created around `t`: a profile that a
// newer one replaces, a note its author deletes (NIP-09), one that expires within the hour
// (NIP-40) and one for an operator to erase.
struct WaysOut {
  EventPtr profile1, profile2, note, deletion, expiring, erased;

  explicit WaysOut(std::int64_t t)
      : profile1(test::signed_event(test::alice(), 0, t, R"({"name":"a"})")),
        profile2(test::signed_event(test::alice(), 0, t + 1, R"({"name":"b"})")),
        note(test::signed_event(test::alice(), 1, t, "note")),
        deletion(
            test::signed_event(test::alice(), 5, t + 2, "", {{"e", std::string(note->id_hex())}})),
        expiring(test::signed_event(test::bob(), 1, t, "expiring",
                                    {{"expiration", std::to_string(test::now() + 3600)}})),
        erased(test::signed_event(test::bob(), 7, t, "+")) {}
};

// The audit action a removal must be recorded with.
AuditAction action_for(const RemovedEvent& r) {
  switch (r.reason) {
    case RemovalReason::kReplaced:
      return AuditAction::kEventReplaced;
    case RemovalReason::kDeleted:
      return AuditAction::kEventDeleted;
    case RemovalReason::kExpired:
      return AuditAction::kEventExpired;
    case RemovalReason::kErased:
      return AuditAction::kEventErased;
    case RemovalReason::kRetention:
      break;
  }
  switch (r.rule) {
    case RetentionRule::kMaxAge:
      return AuditAction::kRetentionMaxAge;
    case RetentionRule::kMaxPerAuthor:
      return AuditAction::kRetentionMaxPerAuthor;
    case RetentionRule::kMaxBytes:
      return AuditAction::kRetentionMaxBytes;
    case RetentionRule::kNone:
      break;
  }
  FAIL("a retention removal without its rule");
  return AuditAction::kEventCreated;
}

struct Expected {
  EventPtr event;
  RemovalReason reason;
  AuditAction action;
  Pubkey actor;
};

}  // namespace

TEST_CASE("every removal is audited and reaches change listeners with its reason",
          "[relay][removals]") {
  test::TempDir dir;
  const std::string audit_path = dir.file("audit.db");
  auto storage = std::make_shared<ClockedStorage>();
  Options o;
  o.storage = storage;
  o.audit = new_sqlite_audit_log(SqliteAuditOptions{audit_path, 64}).value();
  o.verify_threads = 1;
  o.purge_interval_seconds = 1;
  auto relay = Relay::open(std::move(o)).value();
  Removals seen;
  auto listener = relay->listen(seen.listener());

  const std::int64_t t = test::now() - 10;
  const WaysOut ways_out(t);
  const EventPtr &profile1 = ways_out.profile1, &profile2 = ways_out.profile2,
                 &note = ways_out.note, &deletion = ways_out.deletion,
                 &expiring = ways_out.expiring, &erased = ways_out.erased;
  for (const EventPtr& e : {profile1, profile2, note, deletion, expiring, erased}) {
    REQUIRE(relay->submit(e).accepted);
  }

  // The writer purges on its own schedule; moving the storage's clock past the expiration lets
  // the next purge take the event.
  storage->clock = test::now() + 7200;
  REQUIRE(seen.wait_for(expiring->id()));

  std::vector<EventId> to_erase = {erased->id(), EventId{}};
  Result<std::vector<RemovedEvent>> result = relay->erase(to_erase);
  REQUIRE(result.is_ok());
  REQUIRE(result->size() == 1);
  CHECK((*result)[0].id == erased->id());
  CHECK((*result)[0].reason == RemovalReason::kErased);
  CHECK((*result)[0].kind == 7);
  CHECK((*result)[0].pubkey == test::bob().pubkey());
  REQUIRE(seen.wait_for(erased->id()));
  CHECK(relay->count({parse_filter(R"({"kinds":[7]})").value()}).value() == 0);
  // An erase leaves no tombstone: the author may publish the event again.
  OkResult again = relay->submit(erased);
  CHECK(again.accepted);
  CHECK(again.message.empty());

  const std::vector<Expected> expected = {
      {profile1, RemovalReason::kReplaced, AuditAction::kEventReplaced, test::alice().pubkey()},
      {note, RemovalReason::kDeleted, AuditAction::kEventDeleted, test::alice().pubkey()},
      {expiring, RemovalReason::kExpired, AuditAction::kEventExpired, test::bob().pubkey()},
      {erased, RemovalReason::kErased, AuditAction::kEventErased, Pubkey{}},
  };
  std::vector<RemovedEvent> removed;
  {
    std::lock_guard lock(seen.mu);
    removed = seen.removed;
    CHECK_FALSE(seen.gap);
  }
  // The listener saw each removal once, in commit order, with why.
  REQUIRE(removed.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("removal " << i);
    CHECK(removed[i].id == expected[i].event->id());
    CHECK(removed[i].reason == expected[i].reason);
    CHECK(removed[i].kind == expected[i].event->kind());
    CHECK(removed[i].pubkey == expected[i].event->pubkey());
  }

  // The audit log, written out by the shutdown, has one record for each removal, which says
  // why, and still verifies.
  REQUIRE(relay->shutdown().is_ok());
  std::vector<AuditRecord> records = test::read_records(audit_path);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("removal " << i);
    std::vector<AuditRecord> about;
    for (const AuditRecord& r : records) {
      if (r.event_id == expected[i].event->id() && r.action != AuditAction::kEventCreated) {
        about.push_back(r);
      }
    }
    REQUIRE(about.size() == 1);
    CHECK(about[0].action == expected[i].action);
    CHECK(about[0].actor == expected[i].actor);
    CHECK(about[0].kind == expected[i].event->kind());
    CHECK(about[0].event_seq == removed[i].seq);
    CHECK(about[0].timestamp >= t);
  }
  Result<AuditVerifyReport> report = verify_audit_log(audit_path);
  REQUIRE(report.is_ok());
  CHECK(report->ok);
}

TEST_CASE("an erase the storage fails removes, audits and reports nothing", "[relay][removals]") {
  class FailingErase final : public StorageWrapper {
   public:
    FailingErase() : StorageWrapper(new_memory_storage()) {}
    Result<std::vector<RemovedEvent>> erase(std::span<const EventId> /*ids*/) override {
      return Status::error("disk on fire");
    }
  };
  auto audit = std::make_shared<test::GatedAudit>();
  Options o;
  o.storage = std::make_shared<FailingErase>();
  o.audit = audit;
  o.verify_threads = 1;
  auto relay = Relay::open(std::move(o)).value();
  Removals seen;
  auto listener = relay->listen(seen.listener());
  EventPtr note = test::signed_event(test::alice(), 1, test::now(), "kept");
  REQUIRE(relay->submit(note).accepted);

  std::vector<EventId> ids = {note->id()};
  Result<std::vector<RemovedEvent>> result = relay->erase(ids);
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.error().message() == "error: disk on fire");
  // A later commit reaches the listener after anything the erase could have sent.
  EventPtr sentinel = test::signed_event(test::alice(), 0, test::now(), "{}");
  REQUIRE(relay->submit(sentinel).accepted);
  REQUIRE(relay->submit(test::signed_event(test::alice(), 0, test::now() + 1, "{}")).accepted);
  REQUIRE(seen.wait_for(sentinel->id()));
  {
    std::lock_guard lock(seen.mu);
    REQUIRE(seen.removed.size() == 1);  // the replaced sentinel only
  }
  CHECK(relay->count({Filter()}).value() == 2);
  for (const AuditRecord& r : audit->records()) {
    CHECK(r.action != AuditAction::kEventErased);
    if (r.event_id == note->id()) CHECK(r.action == AuditAction::kEventCreated);
  }

  REQUIRE(relay->shutdown().is_ok());
  Result<std::vector<RemovedEvent>> late = relay->erase(ids);
  REQUIRE_FALSE(late.is_ok());
  CHECK(late.error().message() == "error: relay is shutting down");
}

TEST_CASE("every removed event has one audit record, whatever removed it", "[relay][removals]") {
  test::TempDir dir;
  const std::string audit_path = dir.file("audit.db");
  auto storage = std::make_shared<ClockedStorage>();
  Options o;
  o.storage = storage;
  o.audit = new_sqlite_audit_log(SqliteAuditOptions{audit_path, 64}).value();
  o.verify_threads = 1;
  o.purge_interval_seconds = 1;
  o.retention.max_age = {{{1111, 1111}, 86400}};
  o.retention.max_per_author = {{{{6, 6}}, 1}};
  o.retention.batch_size = 2;
  o.retention.interval_seconds = 1;
  Options same = o;
  auto relay = Relay::open(std::move(o)).value();
  Removals seen;
  auto listener = relay->listen(seen.listener());

  const std::int64_t t = test::now() - 10;
  const WaysOut ways_out(t);
  const EventPtr &profile1 = ways_out.profile1, &profile2 = ways_out.profile2,
                 &note = ways_out.note, &deletion = ways_out.deletion,
                 &expiring = ways_out.expiring, &erased = ways_out.erased;
  EventPtr aged = test::signed_event(test::bob(), 1111, t - 2 * 86400, "aged");
  EventPtr repost1 = test::signed_event(test::bob(), 6, t, "");
  EventPtr repost2 = test::signed_event(test::bob(), 6, t + 1, "");
  EventPtr kept = test::signed_event(test::bob(), 1, t + 3, "kept");
  for (const EventPtr& e :
       {profile1, profile2, note, deletion, expiring, erased, aged, repost1, repost2, kept}) {
    REQUIRE(relay->submit(e).accepted);
  }
  storage->clock = test::now() + 7200;
  REQUIRE(seen.wait_for(expiring->id()));
  std::vector<EventId> to_erase = {erased->id()};
  REQUIRE(relay->erase(to_erase).is_ok());
  REQUIRE(seen.wait_for(aged->id()));
  REQUIRE(seen.wait_for(repost1->id()));

  // Now a size limit one event under what is stored: the oldest regular events left go, one
  // step's worth (their JSON, which is all a step counts on, is smaller than what this storage
  // says each event takes, so the step takes a full batch).
  const std::uint64_t stored = relay->count({Filter()}).value();
  same.retention.max_bytes = (stored - 1) * ClockedStorage::kEventBytes;
  REQUIRE(relay->reconfigure(same).is_ok());
  REQUIRE(seen.wait_until([&] { return seen.removed_by(RetentionRule::kMaxBytes) > 0; }));
  std::vector<EventId> for_size;
  {
    std::lock_guard lock(seen.mu);
    for (const RemovedEvent& r : seen.removed) {
      if (r.rule == RetentionRule::kMaxBytes) for_size.push_back(r.id);
    }
  }
  // The deletion and the second repost, stored before `kept`; never the replaceable profile.
  CHECK(for_size == std::vector<EventId>{deletion->id(), repost2->id()});
  CHECK(relay->count({Filter()}).value() == stored - 2);

  REQUIRE(relay->shutdown().is_ok());
  std::vector<RemovedEvent> removed;
  {
    std::lock_guard lock(seen.mu);
    removed = seen.removed;
    CHECK_FALSE(seen.gap);
  }
  // Every way out was taken.
  std::set<std::pair<RemovalReason, RetentionRule>> ways;
  for (const RemovedEvent& r : removed) ways.emplace(r.reason, r.rule);
  CHECK(ways == std::set<std::pair<RemovalReason, RetentionRule>>{
                    {RemovalReason::kReplaced, RetentionRule::kNone},
                    {RemovalReason::kDeleted, RetentionRule::kNone},
                    {RemovalReason::kExpired, RetentionRule::kNone},
                    {RemovalReason::kErased, RetentionRule::kNone},
                    {RemovalReason::kRetention, RetentionRule::kMaxAge},
                    {RemovalReason::kRetention, RetentionRule::kMaxPerAuthor},
                    {RemovalReason::kRetention, RetentionRule::kMaxBytes}});
  const RelayStats stats = relay->stats();
  CHECK(stats.retention_removed == 4);
  // By rule: the aged event, the older repost, and the two removed for size.
  CHECK(stats.retention_removed_max_age == 1);
  CHECK(stats.retention_removed_max_per_author == 1);
  CHECK(stats.retention_removed_max_bytes == 2);
  CHECK(stats_json(stats).find("\"retention_removed_max_per_author\":1,") != std::string::npos);
  CHECK(prometheus_text(stats).find(
            "relaycore_retention_removed_by_rule_total{rule=\"max_bytes\"} 2\n") !=
        std::string::npos);

  // Each removal the listener saw has exactly one record, with the action for its reason, and
  // the log holds no removal the listener did not see.
  std::vector<AuditRecord> records = test::read_records(audit_path);
  std::size_t removal_records = 0;
  for (const AuditRecord& r : records) {
    if (r.action != AuditAction::kEventCreated) ++removal_records;
  }
  CHECK(removal_records == removed.size());
  for (const RemovedEvent& gone : removed) {
    INFO("kind " << gone.kind << " reason " << static_cast<int>(gone.reason));
    std::vector<AuditRecord> about;
    for (const AuditRecord& r : records) {
      if (r.event_id == gone.id && r.action != AuditAction::kEventCreated) about.push_back(r);
    }
    REQUIRE(about.size() == 1);
    CHECK(about[0].action == action_for(gone));
    CHECK(about[0].event_seq == gone.seq);
    CHECK(about[0].kind == gone.kind);
  }
  Result<AuditVerifyReport> report = verify_audit_log(audit_path);
  REQUIRE(report.is_ok());
  CHECK(report->ok);
}

TEST_CASE("retention runs while the relay is idle, a bounded batch at a time",
          "[relay][removals][retention]") {
  auto audit = std::make_shared<test::GatedAudit>();
  Options o;
  o.storage = new_memory_storage();
  o.audit = audit;
  o.verify_threads = 1;
  auto relay = Relay::open(std::move(o)).value();
  Removals seen;
  auto listener = relay->listen(seen.listener());

  const std::int64_t old = test::now() - 40 * 86400;
  std::vector<EventPtr> notes;
  for (int i = 0; i < 7; ++i) {
    notes.push_back(test::signed_event(test::alice(), 1, old + i, "old " + std::to_string(i)));
    REQUIRE(relay->submit(notes.back()).accepted);
  }
  EventPtr young = test::signed_event(test::alice(), 1, test::now(), "young");
  REQUIRE(relay->submit(young).accepted);

  // Rules given to a running relay apply without any further traffic.
  Options rules;
  rules.retention.max_age = {{{1, 1}, 30 * 86400}};
  rules.retention.batch_size = 2;
  REQUIRE(relay->reconfigure(rules).is_ok());
  REQUIRE(seen.wait_until([&] { return seen.removed.size() == notes.size(); }));
  {
    std::lock_guard lock(seen.mu);
    for (std::size_t n : seen.batch_sizes) CHECK(n <= 2);
    CHECK(seen.batch_sizes.size() >= 4);
    for (const RemovedEvent& r : seen.removed) CHECK(r.rule == RetentionRule::kMaxAge);
  }
  CHECK(relay->count({Filter()}).value() == 1);
  std::size_t aged_out = 0;
  for (const AuditRecord& r : audit->records()) {
    if (r.action == AuditAction::kRetentionMaxAge) {
      ++aged_out;
      CHECK(r.actor == Pubkey{});
    }
  }
  CHECK(aged_out == notes.size());

  // Bad rules change nothing, and a relay is not opened with them.
  Options bad = rules;
  bad.retention.max_age = {{{9, 1}, 10}};
  Status refused = relay->reconfigure(bad);
  CHECK(refused.message().starts_with("invalid: "));
  REQUIRE(relay->shutdown().is_ok());
  bad.storage = new_memory_storage();
  Result<std::unique_ptr<Relay>> not_opened = Relay::open(std::move(bad));
  REQUIRE_FALSE(not_opened.is_ok());
  CHECK(not_opened.error().message() == "invalid: retention: max-age kinds 9-1 run backwards");
}

TEST_CASE("new events are committed between retention batches", "[relay][removals][retention]") {
  // Memory storage whose erase() waits for the test's leave, one call per leave, and says when
  // it is waiting: the writer is then inside a retention batch.
  class GatedErase final : public StorageWrapper {
   public:
    GatedErase() : StorageWrapper(new_memory_storage()) {}
    Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) override {
      {
        std::unique_lock lock(mu);
        ++waiting;
        cv.notify_all();
        cv.wait(lock, [&] { return leaves > 0; });
        --leaves;
        --waiting;
      }
      return StorageWrapper::erase(ids);
    }
    void allow(int n) {
      std::lock_guard lock(mu);
      leaves += n;
      cv.notify_all();
    }
    bool wait_until_waiting() {
      std::unique_lock lock(mu);
      return cv.wait_for(lock, 10s, [&] { return waiting > 0; });
    }
    std::mutex mu;
    std::condition_variable cv;
    int waiting = 0;
    int leaves = 0;
  };
  auto storage = std::make_shared<GatedErase>();
  Options o;
  o.storage = storage;
  o.verify_threads = 1;
  auto relay = Relay::open(std::move(o)).value();
  const std::int64_t old = test::now() - 40 * 86400;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(
        relay->submit(test::signed_event(test::alice(), 1, old + i, std::to_string(i))).accepted);
  }
  Options rules;
  rules.retention.max_age = {{{1, 1}, 30 * 86400}};
  rules.retention.batch_size = 1;
  REQUIRE(relay->reconfigure(rules).is_ok());
  REQUIRE(storage->wait_until_waiting());

  // An event arrives while a batch is under way; the batch ends, and the event is committed
  // and answered before the next batch, which waits at the gate meanwhile.
  test::PendingOk fresh(*relay, test::signed_event(test::bob(), 1, test::now(), "fresh"));
  // Verified and queued for the writer, which is still in the batch.
  REQUIRE(test::poll_until([&] { return relay->stats().write_queue == 1; }, 10s));
  storage->allow(1);
  std::optional<OkResult> answer = fresh.wait(10s);
  REQUIRE(answer);
  CHECK(answer->accepted);
  REQUIRE(storage->wait_until_waiting());
  storage->allow(1000);
  REQUIRE(test::poll_until([&] { return relay->count({Filter()}).value() == 1; }, 10s));
  REQUIRE(relay->shutdown().is_ok());
}
