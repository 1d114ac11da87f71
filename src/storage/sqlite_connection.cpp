#include "storage/sqlite_connection.hpp"

#include <cstring>
#include <string>
#include <utility>

#include "storage/sqlite_wal_buffer.hpp"

namespace relaycore::storage {
namespace {

// Filter shapes are few in practice; this bounds the cache when a client varies them.
constexpr std::size_t kMaxDynamicStatements = 128;
// The statements of prepare_set, over all its SQL texts.
constexpr std::size_t kMaxSetStatements = 512;

void finalize_all(StringMap<sqlite3_stmt*>& cache) noexcept {
  for (auto& [sql, stmt] : cache) sqlite3_finalize(stmt);
  cache.clear();
}

void finalize_all(StringMap<std::vector<sqlite3_stmt*>>& sets) noexcept {
  for (auto& [sql, set] : sets) {
    for (sqlite3_stmt* stmt : set) sqlite3_finalize(stmt);
  }
  sets.clear();
}

}  // namespace

Status sqlite_error(std::string_view what, int rc) {
  std::string detail = "storage: ";
  detail.append(what);
  detail.append(" (");
  detail.append(sqlite3_errstr(rc));
  detail.push_back(')');
  return Status::error(detail);
}

Result<std::unique_ptr<SqliteConnection>> SqliteConnection::open(const std::string& path,
                                                                 bool read_only) {
  const int flags =
      (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  sqlite3* db = nullptr;
  // The writer goes through the WAL-buffering VFS (see sqlite_wal_buffer.hpp); readers never
  // write the WAL.
  const char* vfs = read_only ? nullptr : wal_buffer_vfs_name();
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs);
  if (rc != SQLITE_OK) {
    sqlite3_close_v2(db);  // a handle is returned even on failure
    return sqlite_error("cannot open the database", rc);
  }
  return std::unique_ptr<SqliteConnection>(new SqliteConnection(db));
}

SqliteConnection::~SqliteConnection() {
  finalize_all(fixed_);
  finalize_all(dynamic_);
  finalize_all(sets_);
  sqlite3_close_v2(db_);
}

Status SqliteConnection::exec(const char* sql, std::string_view what) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(what, rc);
  return Status::ok();
}

Result<sqlite3_stmt*> SqliteConnection::prepare_one(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK || stmt == nullptr) {
    sqlite3_finalize(stmt);
    return sqlite_error("cannot prepare a statement", rc == SQLITE_OK ? SQLITE_ERROR : rc);
  }
  return stmt;
}

Result<sqlite3_stmt*> SqliteConnection::prepare_into(StringMap<sqlite3_stmt*>& cache,
                                                     std::string_view sql) {
  if (auto it = cache.find(sql); it != cache.end()) return it->second;
  std::string key(sql);
  auto stmt = prepare_one(key);
  if (stmt) cache.emplace(std::move(key), *stmt);
  return stmt;
}

Result<sqlite3_stmt*> SqliteConnection::prepare(std::string_view sql) {
  return prepare_into(fixed_, sql);
}

Result<sqlite3_stmt*> SqliteConnection::prepare_dynamic(const std::string& sql) {
  if (dynamic_.size() >= kMaxDynamicStatements && !dynamic_.contains(sql)) finalize_all(dynamic_);
  return prepare_into(dynamic_, sql);
}

Result<std::vector<sqlite3_stmt*>> SqliteConnection::prepare_set(const std::string& sql,
                                                                 std::size_t n) {
  auto it = sets_.find(sql);
  const std::size_t have = it == sets_.end() ? 0 : it->second.size();
  if (n > have && set_statements_ + (n - have) > kMaxSetStatements) {
    finalize_all(sets_);
    set_statements_ = 0;
  }
  std::vector<sqlite3_stmt*>& set = sets_[sql];
  while (set.size() < n) {
    auto stmt = prepare_one(sql);
    if (!stmt) return std::move(stmt).error();
    set.push_back(*stmt);
    ++set_statements_;
  }
  return std::vector<sqlite3_stmt*>(set.begin(), set.begin() + static_cast<std::ptrdiff_t>(n));
}

Status SqliteConnection::run(std::string_view sql, std::string_view what) {
  auto stmt = prepare(sql);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  const int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sqlite_error(what, rc);
  return Status::ok();
}

int bind_bytes(sqlite3_stmt* stmt, int index, const Bytes32& bytes) noexcept {
  return sqlite3_bind_blob(stmt, index, bytes.data(), static_cast<int>(bytes.size()),
                           SQLITE_STATIC);
}

int bind_text(sqlite3_stmt* stmt, int index, std::string_view text) noexcept {
  return sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

int bind_int(sqlite3_stmt* stmt, int index, std::int64_t value) noexcept {
  return sqlite3_bind_int64(stmt, index, value);
}

bool column_bytes(sqlite3_stmt* stmt, int column, Bytes32& out) noexcept {
  const void* data = sqlite3_column_blob(stmt, column);
  if (data == nullptr || sqlite3_column_bytes(stmt, column) != static_cast<int>(out.size())) {
    return false;
  }
  std::memcpy(out.data(), data, out.size());
  return true;
}

std::string_view column_text(sqlite3_stmt* stmt, int column) noexcept {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return {};
  return {text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column))};
}

}  // namespace relaycore::storage
