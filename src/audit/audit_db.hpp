// The SQLite side of the audit log, shared by the writer and the verifier: the schema, owning
// handles, and the few helpers both need to read records back.
#pragma once

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "audit/audit_chain.hpp"
#include "relaycore/status.hpp"

namespace relaycore::audit {

// The whole schema, created in one transaction with the first open. `records` is the chain;
// `head` is a single row (last seq, last hash, highest created/recovered event_seq) updated in
// the same transaction as every append, so a tail cut off the records table is visible; `meta`
// holds the format version. The triggers refuse UPDATE and DELETE on records: they stop
// accidents, not attackers (who can drop them), which is what the hash chain is for.
inline constexpr const char* kSchemaSql = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE records (
  seq INTEGER PRIMARY KEY,
  timestamp INTEGER NOT NULL,
  action INTEGER NOT NULL,
  event_id BLOB NOT NULL,
  kind INTEGER NOT NULL,
  actor BLOB NOT NULL,
  event_seq INTEGER NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL);
CREATE TABLE head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  last_event_seq INTEGER NOT NULL);
INSERT INTO head VALUES (1, 0, zeroblob(32), 0);
CREATE TRIGGER records_no_update BEFORE UPDATE ON records
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
)sql";

// The columns of `records`, in the order every SELECT of them uses.
inline constexpr const char* kRecordColumns =
    "seq, timestamp, action, event_id, kind, actor, event_seq, prev_hash, hash";

// sqlite3_close_v2 frees the connection even if a statement were still open (once it is
// finalized), so a handle is never leaked on an error path.
struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// "error: audit: <what>: <sqlite message>".
inline Status sqlite_error(sqlite3* db, std::string_view what) {
  std::string message = "audit: ";
  message.append(what);
  if (db != nullptr) {
    message += ": ";
    message += sqlite3_errmsg(db);
  }
  return Status::error(message);
}

inline Status exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sqlite_error(db, sql);
  }
  return Status::ok();
}

inline Result<Stmt> prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    return sqlite_error(db, "prepare");
  }
  return Stmt(stmt);
}

// Reads a 32-byte blob column; false when the column is not exactly that.
template <std::size_t N>
bool column_bytes(sqlite3_stmt* stmt, int col, std::array<std::uint8_t, N>& out) {
  if (sqlite3_column_type(stmt, col) != SQLITE_BLOB) return false;
  if (sqlite3_column_bytes(stmt, col) != static_cast<int>(N)) return false;
  std::memcpy(out.data(), sqlite3_column_blob(stmt, col), N);
  return true;
}

inline bool column_int(sqlite3_stmt* stmt, int col, std::int64_t& out) {
  if (sqlite3_column_type(stmt, col) != SQLITE_INTEGER) return false;
  out = sqlite3_column_int64(stmt, col);
  return true;
}

// The format version in `meta`, 0 when the database has no relaycore audit schema at all, or an
// error when it has one that cannot be read.
inline Result<std::int64_t> read_format_version(sqlite3* db) {
  Result<Stmt> probe =
      prepare(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
  if (!probe) return probe.error();
  if (sqlite3_step(probe->get()) != SQLITE_ROW) return sqlite_error(db, "read schema");
  if (sqlite3_column_int64(probe->get(), 0) == 0) return std::int64_t{0};
  Result<Stmt> stmt = prepare(db, "SELECT value FROM meta WHERE key = 'format_version'");
  if (!stmt) return stmt.error();
  std::int64_t version = 0;
  if (sqlite3_step(stmt->get()) != SQLITE_ROW || !column_int(stmt->get(), 0, version)) {
    return Status::error("audit: the meta table has no format_version");
  }
  return version;
}

}  // namespace relaycore::audit
