// One SQLite connection with its prepared-statement cache. A connection is used by one thread
// at a time (the writer's mutex or a reader lease guarantees it), so nothing here locks.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/status.hpp"
#include "util/string_map.hpp"

namespace relaycore::storage {

// "error: storage: <what> (<SQLite's generic text for rc>)". SQLite's code text is short and
// says nothing about paths or schema, so it is safe to pass on.
Status sqlite_error(std::string_view what, int rc);

// Resets a statement and clears its bindings when the scope ends, so a cached statement never
// keeps a read snapshot open or points at a caller's buffers.
class StatementScope {
 public:
  explicit StatementScope(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  ~StatementScope() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StatementScope(const StatementScope&) = delete;
  StatementScope& operator=(const StatementScope&) = delete;

  sqlite3_stmt* get() const noexcept { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

class SqliteConnection {
 public:
  // Opens `path` read-write (creating it) or read-only. The connection is in multi-thread
  // mode: relaycore serialises its use.
  static Result<std::unique_ptr<SqliteConnection>> open(const std::string& path, bool read_only);

  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  sqlite3* handle() const noexcept { return db_; }

  // Runs statements that return no rows (pragmas, DDL).
  Status exec(const char* sql, std::string_view what);

  // A statement for fixed SQL, prepared once and kept for the connection's life.
  Result<sqlite3_stmt*> prepare(std::string_view sql);

  // A statement for SQL built per filter. These live in a bounded cache that is emptied when it
  // fills, so only one dynamic statement may be in use at a time on a connection.
  Result<sqlite3_stmt*> prepare_dynamic(const std::string& sql);

  // `n` distinct statements for one SQL built per filter, for a read that steps several at
  // once (one ordered scan per value of a list, merged). Kept apart from prepare_dynamic's in a
  // cache of their own, bounded the same way; valid until the next prepare_set.
  Result<std::vector<sqlite3_stmt*>> prepare_set(const std::string& sql, std::size_t n);

  // Runs a cached statement that returns no rows.
  Status run(std::string_view sql, std::string_view what);

 private:
  explicit SqliteConnection(sqlite3* db) noexcept : db_(db) {}
  Result<sqlite3_stmt*> prepare_one(const std::string& sql);
  Result<sqlite3_stmt*> prepare_into(StringMap<sqlite3_stmt*>& cache, std::string_view sql);

  sqlite3* db_;
  StringMap<sqlite3_stmt*> fixed_;
  StringMap<sqlite3_stmt*> dynamic_;
  StringMap<std::vector<sqlite3_stmt*>> sets_;
  std::size_t set_statements_ = 0;  // in sets_
};

// Binding helpers; SQLITE_STATIC, so the bound memory must outlive the statement's use (the
// StatementScope clears the bindings before that matters).
int bind_bytes(sqlite3_stmt* stmt, int index, const Bytes32& bytes) noexcept;
int bind_text(sqlite3_stmt* stmt, int index, std::string_view text) noexcept;
int bind_int(sqlite3_stmt* stmt, int index, std::int64_t value) noexcept;

// Reads a 32-byte blob column; false when the column has another size.
bool column_bytes(sqlite3_stmt* stmt, int column, Bytes32& out) noexcept;

// The text of a column as a view valid until the next step or reset.
std::string_view column_text(sqlite3_stmt* stmt, int column) noexcept;

}  // namespace relaycore::storage
