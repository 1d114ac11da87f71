// Invariant 3: a slow audit sink slows its producer down through the bounded
// queue; it never grows past the capacity and never drops a record.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "test_audit_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;

// Broken by an enqueue() that lets records in past the capacity instead of waiting for room.
TEST_CASE("audit slow sink applies backpressure and drops nothing", "[audit]") {
  constexpr std::size_t kCapacity = 8;
  constexpr std::uint64_t kRecords = 200;
  constexpr auto kDelay = 2ms;  // each batch the sink writes takes this long
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto opened = audit::new_sqlite_audit_log(SqliteAuditOptions{path, kCapacity}, kDelay);
  REQUIRE(opened);
  std::shared_ptr<AuditSink> sink = *opened;

  // The producer is far faster than the sink, so it only keeps up by waiting: each enqueue()
  // returns once its record fits, and from then on the sink only takes records out. So right
  // after every enqueue() no more than the capacity is pending; without the wait, the backlog
  // would grow with every record the producer adds while the sink writes a batch.
  int failures = 0;
  std::size_t max_queued = 0;
  for (std::uint64_t i = 1; i <= kRecords; ++i) {
    if (!sink->enqueue({test::audit_record(i)}).is_ok()) ++failures;
    max_queued = std::max(max_queued, sink->queued());
  }
  REQUIRE(sink->close().is_ok());
  CHECK(failures == 0);
  CHECK(max_queued <= kCapacity);

  Result<AuditVerifyReport> report = verify_audit_log(path);
  REQUIRE(report);
  CHECK(report->ok);
  CHECK(report->records == kRecords);

  // Every record arrived, once, in order.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT event_seq FROM records ORDER BY seq", -1, &stmt,
                             nullptr) == SQLITE_OK);
  std::int64_t expected = 1;
  bool in_order = true;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    in_order = in_order && sqlite3_column_int64(stmt, 0) == expected;
    ++expected;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  CHECK(in_order);
  CHECK(expected == static_cast<std::int64_t>(kRecords) + 1);
}

TEST_CASE("audit producer blocked on a full queue resumes as the sink drains", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto opened = audit::new_sqlite_audit_log(SqliteAuditOptions{path, 2}, 5ms);
  REQUIRE(opened);
  std::shared_ptr<AuditSink> sink = *opened;
  // Two producers racing for a two-record queue: both finish, and every record lands.
  std::atomic<int> failures{0};
  auto produce = [&](std::uint64_t first) {
    for (std::uint64_t i = first; i < first + 20; ++i) {
      if (!sink->enqueue({test::audit_record(i)}).is_ok()) failures.fetch_add(1);
    }
  };
  std::thread a(produce, 1);
  std::thread b(produce, 101);
  a.join();
  b.join();
  Result<std::uint64_t> last = sink->last_event_seq();
  REQUIRE(last);
  CHECK(sink->queued() == 0);
  REQUIRE(sink->close().is_ok());
  CHECK(failures.load() == 0);
  Result<AuditVerifyReport> report = verify_audit_log(path);
  REQUIRE(report);
  CHECK(report->ok);
  CHECK(report->records == 40);
}

TEST_CASE("audit verify sees a consistent chain while the sink appends", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto opened = audit::new_sqlite_audit_log(SqliteAuditOptions{path, 16}, 200us);
  REQUIRE(opened);
  std::shared_ptr<AuditSink> sink = *opened;
  std::atomic<bool> producing{true};
  std::thread producer([&] {
    for (std::uint64_t i = 1; i <= 300; i += 3) {
      static_cast<void>(sink->enqueue(
          {test::audit_record(i), test::audit_record(i + 1), test::audit_record(i + 2)}));
    }
    producing.store(false);
  });
  int runs = 0;
  int bad = 0;
  std::uint64_t seen = 0;
  while (producing.load() || runs == 0) {
    Result<AuditVerifyReport> report = verify_audit_log(path);
    ++runs;
    if (!report || !report->ok || report->records < seen) ++bad;
    if (report) seen = report->records;
  }
  producer.join();
  REQUIRE(sink->close().is_ok());
  CHECK(bad == 0);
  Result<AuditVerifyReport> report = verify_audit_log(path);
  REQUIRE(report);
  CHECK(report->ok);
  CHECK(report->records == 300);
}
