// Invariant 3 of DESIGN.md: a slow audit sink slows its producer down through the bounded
// queue; it never grows past the capacity and never drops a record.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "test_audit_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;

TEST_CASE("audit slow sink applies backpressure and drops nothing", "[audit]") {
  constexpr std::size_t kCapacity = 8;
  constexpr std::uint64_t kRecords = 200;
  constexpr auto kDelay = 2ms;
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto opened = audit::new_sqlite_audit_log(SqliteAuditOptions{path, kCapacity}, kDelay);
  REQUIRE(opened);
  std::shared_ptr<AuditSink> sink = *opened;

  std::atomic<bool> producing{true};
  std::atomic<std::size_t> max_queued{0};
  std::atomic<std::size_t> samples{0};
  std::thread sampler([&] {
    while (producing.load()) {
      std::size_t q = sink->queued();
      if (q > max_queued.load()) max_queued.store(q);
      samples.fetch_add(1);
      std::this_thread::sleep_for(20us);
    }
  });

  std::atomic<int> failures{0};
  auto start = std::chrono::steady_clock::now();
  std::thread producer([&] {
    for (std::uint64_t i = 1; i <= kRecords; ++i) {
      if (!sink->enqueue({test::audit_record(i)}).is_ok()) failures.fetch_add(1);
    }
  });
  producer.join();
  auto elapsed = std::chrono::steady_clock::now() - start;
  producing.store(false);
  sampler.join();

  REQUIRE(sink->close().is_ok());
  CHECK(failures.load() == 0);
  CHECK(samples.load() > 0);
  CHECK(max_queued.load() <= kCapacity);
  // Each batch holds at most kCapacity records and takes at least kDelay. When the producer's
  // last enqueue returns, at most kCapacity records are still pending, so at least
  // (kRecords - kCapacity) / kCapacity = 24 batches have been written: 48 ms. Without
  // backpressure 200 enqueues take well under a millisecond.
  auto lower_bound = kDelay * ((kRecords - kCapacity) / kCapacity) * 8 / 10;
  INFO("producer took " << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()
                        << " us");
  CHECK(elapsed >= lower_bound);

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
