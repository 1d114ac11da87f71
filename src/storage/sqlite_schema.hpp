// The SQLite schema and the per-connection settings.
#pragma once

#include <optional>
#include <string_view>

#include "relaycore/event.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/sqlite.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"
#include "storage/sqlite_connection.hpp"
#include "storage/storage_util.hpp"

namespace relaycore::storage {

// The schema this code writes and reads, kept in PRAGMA user_version. A database with a newer
// version is refused rather than misread.
inline constexpr int kSchemaVersion = 9;

// The 32 bytes a tag value is stored as when it is 64 lowercase hex digits (ids and pubkeys in
// e/p tags); nothing for any other value, which is stored as text. The writer and the filters'
// bind_params both use it, so a stored value and a filter value compare alike.
inline std::optional<Bytes32> tag_key(std::string_view value) { return parse_event_id(value); }

// Binds a tag value as the tags table keeps it: tag_key()'s 32 bytes, or the text. With `key`,
// nothing is copied: the 32 bytes go into `*key`, and it and the text must outlive the
// statement's use (the writer's inserts and deletes, where a copy would cost SQLite a malloc per
// tag). Without it the 32 bytes are copied.
inline int bind_tag_value(sqlite3_stmt* stmt, int index, std::string_view value,
                          std::optional<Bytes32>* key = nullptr) noexcept {
  std::optional<Bytes32> copied;
  std::optional<Bytes32>& held = key != nullptr ? *key : copied;
  held = tag_key(value);
  if (held) {
    return sqlite3_bind_blob(stmt, index, held->data(), static_cast<int>(held->size()),
                             key != nullptr ? SQLITE_STATIC : SQLITE_TRANSIENT);
  }
  return sqlite3_bind_text64(stmt, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8);
}

// How long a connection waits for a lock held by another process before failing, in ms.
inline constexpr int kBusyTimeoutMs = 5000;

// Settings every connection needs: busy timeout, page cache and synchronous level. The writer
// also switches the file to WAL.
Status configure_connection(SqliteConnection& conn, const SqliteOptions& options, bool writer);

// Creates the schema on a fresh database, migrates an older version to this one (in one
// transaction: a failed migration leaves the file as it was), or checks the version of a
// current one. Runs on the writer connection before any reader opens. Migrating rebuilds
// indexes over every event, so an open of a large old file takes a while once; its progress
// goes to `log` (may be null).
Status ensure_schema(SqliteConnection& conn, Logger* log);

}  // namespace relaycore::storage
