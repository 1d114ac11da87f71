// Test helpers for the SQLite storage: a plain SQLite handle on a storage's file, to look at
// what the storage left there, and a storage opened at a path with a small cache.
#pragma once

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "relaycore/sqlite.hpp"
#include "relaycore/storage.hpp"
#include "storage/sqlite_connection.hpp"
#include "storage/sqlite_filter_sql.hpp"

namespace relaycore::test {

// A plain handle on the same file, to look at what the storage left there.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }

  sqlite3* handle() const noexcept { return db_; }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    INFO((error != nullptr ? error : ""));
    sqlite3_free(error);
    REQUIRE(rc == SQLITE_OK);
  }

  // Column 0 of every row.
  std::vector<std::string> column(const std::string& sql,
                                  const std::vector<storage::SqlParam>& params = {}, int col = 0) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(storage::bind_params(stmt, params) == SQLITE_OK);
    std::vector<std::string> rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      rows.emplace_back(storage::column_text(stmt, col));
    }
    sqlite3_finalize(stmt);
    return rows;
  }

  // Runs one statement that returns no rows, with parameters.
  void run(const std::string& sql, const std::vector<storage::SqlParam>& params) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(storage::bind_params(stmt, params) == SQLITE_OK);
    const int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    REQUIRE(rc == SQLITE_DONE);
  }

  // The detail lines of EXPLAIN QUERY PLAN for a query, one per line.
  std::string plan(const storage::SqlQuery& q) {
    std::string lines;
    for (const std::string& line : column("EXPLAIN QUERY PLAN " + q.sql, q.params, 3)) {
      lines += line + "\n";
    }
    return lines;
  }

  std::string text(const std::string& sql) {
    std::vector<std::string> rows = column(sql);
    REQUIRE(rows.size() == 1);
    return rows[0];
  }

 private:
  sqlite3* db_ = nullptr;
};

// The search index's structure record as FTS5 keeps it (row 10 of events_search_data): a 4-byte
// cookie, then varints: the number of levels, of segments, the write counter, and per level the
// segments in a merge under way, the segment count and three varints per segment.
struct SearchStructure {
  std::uint64_t segments = 0;
  // The number of segments on each level.
  std::vector<std::uint64_t> levels;
  // Segments taking part in a merge that a step began and has not finished, on all levels.
  std::uint64_t merging = 0;
};

inline SearchStructure search_structure(RawDb& db) {
  const std::string hex = db.text("SELECT hex(block) FROM events_search_data WHERE id = 10");
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  std::size_t at = 4;
  auto varint = [&] {
    std::uint64_t v = 0;
    while (at < bytes.size()) {
      const std::uint8_t b = bytes[at++];
      v = (v << 7) | (b & 0x7f);
      if ((b & 0x80) == 0) break;
    }
    return v;
  };
  SearchStructure s;
  const std::uint64_t levels = varint();
  s.segments = varint();
  varint();  // write counter (counts only while automerge is on)
  for (std::uint64_t level = 0; level < levels; ++level) {
    s.merging += varint();
    const std::uint64_t n = varint();
    for (std::uint64_t i = 0; i < 3 * n; ++i) varint();
    s.levels.push_back(n);
  }
  REQUIRE(at == bytes.size());
  return s;
}

inline std::shared_ptr<Storage> open_at(const std::string& path,
                                        SqliteOptions options = SqliteOptions()) {
  options.path = path;
  options.cache_kib = 2048;
  auto opened = new_sqlite_storage(options);
  if (!opened) FAIL(opened.error().message());
  return *opened;
}

}  // namespace relaycore::test
