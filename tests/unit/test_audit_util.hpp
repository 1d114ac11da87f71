// Helpers shared by the audit tests: a private temp dir, deterministic records, a chain writer,
// and direct SQL on a database file for tampering.
#pragma once

#include <sqlite3.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "audit/sqlite_audit_log.hpp"
#include "crypto/sha256.hpp"
#include "relaycore/audit.hpp"

namespace relaycore::test {

// A fresh directory of its own for each test, removed afterwards, so tests can run in parallel.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "relaycore-audit-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Record i of a test chain: every field differs from record to record, and every action occurs.
inline AuditRecord audit_record(std::uint64_t i) {
  static constexpr AuditAction kActions[] = {
      AuditAction::kEventCreated,     AuditAction::kEventDeleted,
      AuditAction::kEventReplaced,    AuditAction::kRecovered,
      AuditAction::kEventExpired,     AuditAction::kEventErased,
      AuditAction::kRetentionMaxAge,  AuditAction::kRetentionMaxPerAuthor,
      AuditAction::kRetentionMaxBytes};
  AuditRecord r;
  r.event_seq = i;
  r.timestamp = 1700000000 + static_cast<std::int64_t>(i);
  r.action = kActions[i % std::size(kActions)];
  r.event_id = crypto::sha256("event " + std::to_string(i));
  r.kind = static_cast<std::uint16_t>(i % 40000);
  r.actor = crypto::sha256("actor " + std::to_string(i % 3));
  return r;
}

// Writes records first..first+count-1 through the real sink, in batches of varying size.
inline void write_chain(const std::string& path, std::uint64_t first, std::uint64_t count) {
  auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 64});
  REQUIRE(sink);
  static constexpr std::uint64_t kBatchSizes[] = {1, 17, 50, 3, 64};
  std::uint64_t next = first;
  std::size_t round = 0;
  while (next < first + count) {
    std::uint64_t n = std::min(kBatchSizes[round++ % 5], first + count - next);
    std::vector<AuditRecord> batch;
    for (std::uint64_t i = 0; i < n; ++i) batch.push_back(audit_record(next++));
    REQUIRE((*sink)->enqueue(std::move(batch)).is_ok());
  }
  REQUIRE((*sink)->close().is_ok());
}

// Runs SQL on an audit database directly, the way someone tampering with it would: without the
// append-only triggers.
inline void tamper(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  std::string all =
      "DROP TRIGGER IF EXISTS records_no_update;"
      "DROP TRIGGER IF EXISTS records_no_delete;" +
      sql;
  char* error = nullptr;
  int rc = sqlite3_exec(db, all.c_str(), nullptr, nullptr, &error);
  std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  INFO(message);
  REQUIRE(rc == SQLITE_OK);
}

// Another writer taking seq 2 behind the sink's back makes the sink's next append fail.
inline constexpr const char* kIntruder =
    "INSERT INTO records VALUES (2, 0, 1, zeroblob(32), 0, zeroblob(32), 0, zeroblob(32), "
    "zeroblob(32))";

// Every record in an audit database, in sequence order (its fields the sink was given).
inline std::vector<AuditRecord> read_records(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT timestamp, action, event_id, kind, actor, event_seq "
                             "FROM records ORDER BY seq",
                             -1, &stmt, nullptr) == SQLITE_OK);
  auto bytes = [&](int col, Bytes32& out) {
    REQUIRE(sqlite3_column_bytes(stmt, col) == 32);
    std::memcpy(out.data(), sqlite3_column_blob(stmt, col), 32);
  };
  std::vector<AuditRecord> records;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    AuditRecord r;
    r.timestamp = sqlite3_column_int64(stmt, 0);
    r.action = static_cast<AuditAction>(sqlite3_column_int(stmt, 1));
    bytes(2, r.event_id);
    r.kind = static_cast<std::uint16_t>(sqlite3_column_int(stmt, 3));
    bytes(4, r.actor);
    r.event_seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 5));
    records.push_back(r);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return records;
}

// Copies a closed audit database (its WAL is checkpointed and removed on close).
inline std::string copy_db(const TempDir& dir, const std::string& from, const std::string& name) {
  std::string to = dir.file(name);
  std::filesystem::copy_file(from, to);
  return to;
}

}  // namespace relaycore::test
