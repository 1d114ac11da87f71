// The SQLite audit sink on real files: building, reopening and continuing a chain, and the
// queue's edge cases.
#include <catch2/catch.hpp>
#include <chrono>

#include "test_audit_util.hpp"
#include "test_util.hpp"

using namespace relaycore;

namespace {

AuditVerifyReport verify_ok(const std::string& path) {
  Result<AuditVerifyReport> report = verify_audit_log(path);
  REQUIRE(report);
  INFO("bad record " << report->first_bad_seq << ": " << report->problem);
  CHECK(report->ok);
  CHECK(report->first_bad_seq == 0);
  CHECK(report->problem.empty());
  return *report;
}

}  // namespace

TEST_CASE("audit fresh chain of several batches verifies", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  test::write_chain(path, 1, 300);
  CHECK(verify_ok(path).records == 300);
}

TEST_CASE("audit empty log verifies", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 8});
  REQUIRE(sink);
  REQUIRE((*sink)->close().is_ok());
  CHECK(verify_ok(path).records == 0);
}

TEST_CASE("audit reopen after close continues the chain", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  test::write_chain(path, 1, 120);
  test::write_chain(path, 121, 80);
  test::write_chain(path, 201, 1);
  CHECK(verify_ok(path).records == 201);

  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT seq, event_seq FROM records ORDER BY seq", -1, &stmt,
                             nullptr) == SQLITE_OK);
  std::int64_t expected = 1;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    CHECK(sqlite3_column_int64(stmt, 0) == expected);
    CHECK(sqlite3_column_int64(stmt, 1) == expected);
    ++expected;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  CHECK(expected == 202);
}

TEST_CASE("audit last_event_seq counts created and recovered records only", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto record = [](AuditAction action, std::uint64_t event_seq) {
    AuditRecord r = test::audit_record(event_seq);
    r.action = action;
    r.event_seq = event_seq;
    return r;
  };
  {
    auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 8});
    REQUIRE(sink);
    Result<std::uint64_t> empty = (*sink)->last_event_seq();
    REQUIRE(empty);
    CHECK(*empty == 0);
    REQUIRE(
        (*sink)
            ->enqueue({record(AuditAction::kEventCreated, 5), record(AuditAction::kRecovered, 9)})
            .is_ok());
    REQUIRE((*sink)
                ->enqueue(
                    {record(AuditAction::kEventReplaced, 12), record(AuditAction::kEventDeleted, 0),
                     record(AuditAction::kEventExpired, 15), record(AuditAction::kEventErased, 20),
                     record(AuditAction::kEventCreated, 7)})
                .is_ok());
    Result<std::uint64_t> last = (*sink)->last_event_seq();
    REQUIRE(last);
    CHECK(*last == 9);
    CHECK((*sink)->queued() == 0);
    REQUIRE((*sink)->close().is_ok());
  }
  auto reopened = new_sqlite_audit_log(SqliteAuditOptions{path, 8});
  REQUIRE(reopened);
  Result<std::uint64_t> last = (*reopened)->last_event_seq();
  REQUIRE(last);
  CHECK(*last == 9);
  REQUIRE((*reopened)->close().is_ok());
  CHECK(verify_ok(path).records == 7);
}

TEST_CASE("audit batch larger than the queue capacity is admitted", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 4});
  REQUIRE(sink);
  std::vector<AuditRecord> big;
  for (std::uint64_t i = 1; i <= 10; ++i) big.push_back(test::audit_record(i));
  REQUIRE((*sink)->enqueue(std::move(big)).is_ok());
  REQUIRE((*sink)->enqueue({test::audit_record(11), test::audit_record(12)}).is_ok());
  REQUIRE((*sink)->close().is_ok());
  CHECK(verify_ok(path).records == 12);
}

TEST_CASE("audit close is idempotent and enqueue after close fails", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 4});
  REQUIRE(sink);
  REQUIRE((*sink)->enqueue({test::audit_record(1)}).is_ok());
  REQUIRE((*sink)->close().is_ok());
  REQUIRE((*sink)->close().is_ok());
  Status late = (*sink)->enqueue({test::audit_record(2)});
  CHECK(late.code() == StatusCode::kError);
  CHECK(verify_ok(path).records == 1);
}

TEST_CASE("audit destructor writes out what is queued", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  {
    auto sink =
        audit::new_sqlite_audit_log(SqliteAuditOptions{path, 64}, std::chrono::microseconds(1000));
    REQUIRE(sink);
    for (std::uint64_t i = 1; i <= 40; ++i)
      REQUIRE((*sink)->enqueue({test::audit_record(i)}).is_ok());
  }
  CHECK(verify_ok(path).records == 40);
}

TEST_CASE("audit enqueue refuses a record with an unknown action", "[audit]") {
  test::TempDir dir;
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{dir.file("audit.db"), 4});
  REQUIRE(sink);
  AuditRecord bad = test::audit_record(1);
  bad.action = static_cast<AuditAction>(42);
  CHECK_FALSE((*sink)->enqueue({bad}).is_ok());
  CHECK((*sink)->queued() == 0);
  REQUIRE((*sink)->close().is_ok());
}

TEST_CASE("audit open refuses bad options and foreign databases", "[audit]") {
  test::TempDir dir;
  CHECK_FALSE(new_sqlite_audit_log(SqliteAuditOptions{dir.file("a.db"), 0}));
  CHECK_FALSE(new_sqlite_audit_log(SqliteAuditOptions{dir.file("missing/dir/a.db"), 8}));

  std::string foreign = dir.file("foreign.db");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(foreign.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{foreign, 8});
  REQUIRE_FALSE(sink);
  CHECK(sink.error().message().find("not a relaycore audit log") != std::string::npos);
  Result<AuditVerifyReport> report = verify_audit_log(foreign);
  CHECK_FALSE(report);
  CHECK_FALSE(verify_audit_log(dir.file("does-not-exist.db")));
}

TEST_CASE("audit open refuses a log whose tail was cut off", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  test::write_chain(path, 1, 30);
  test::tamper(path, "DELETE FROM records WHERE seq > 27");
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 8});
  REQUIRE_FALSE(sink);
  CHECK(sink.error().message().find("truncated") != std::string::npos);
}

TEST_CASE("audit records table refuses updates and deletes", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  test::write_chain(path, 1, 3);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "UPDATE records SET kind = 0", nullptr, nullptr, nullptr) != SQLITE_OK);
  CHECK(sqlite3_exec(db, "DELETE FROM records", nullptr, nullptr, nullptr) != SQLITE_OK);
  sqlite3_close(db);
  CHECK(verify_ok(path).records == 3);
}

TEST_CASE("audit sink keeps a refused batch and writes it once it can", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 8});
  REQUIRE(sink);
  REQUIRE((*sink)->enqueue({test::audit_record(1)}).is_ok());
  REQUIRE((*sink)->last_event_seq());
  test::tamper(path, test::kIntruder);

  REQUIRE((*sink)->enqueue({test::audit_record(2)}).is_ok());
  Result<std::uint64_t> failed = (*sink)->last_event_seq();
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code() == StatusCode::kError);
  CHECK((*sink)->queued() == 1);  // kept, not dropped
  CHECK_FALSE((*sink)->enqueue({test::audit_record(3)}).is_ok());

  test::tamper(path, "DELETE FROM records WHERE seq = 2");
  // The sink retries on its own backoff timer (up to a second apart), which nothing outside it
  // can wait on: ask until the batch is out.
  CHECK(test::poll_until([&] { return (*sink)->queued() == 0; }, std::chrono::seconds(10)));
  Result<std::uint64_t> last = (*sink)->last_event_seq();
  REQUIRE(last);
  CHECK(*last == 0);  // records 1 and 2 are a deletion and a replacement
  REQUIRE((*sink)->enqueue({test::audit_record(3)}).is_ok());
  REQUIRE((*sink)->close().is_ok());
  CHECK(verify_ok(path).records == 3);
}

TEST_CASE("audit close reports records it could not write", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 8});
  REQUIRE(sink);
  REQUIRE((*sink)->enqueue({test::audit_record(1)}).is_ok());
  REQUIRE((*sink)->last_event_seq());
  test::tamper(path, test::kIntruder);
  REQUIRE((*sink)->enqueue({test::audit_record(2), test::audit_record(3)}).is_ok());
  Status closed = (*sink)->close();
  REQUIRE_FALSE(closed.is_ok());
  CHECK(closed.message().find("2 records could not be written") != std::string::npos);
  CHECK((*sink)->close().message() == closed.message());
}
