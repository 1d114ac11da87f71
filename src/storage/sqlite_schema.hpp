// The SQLite schema and the per-connection settings.
#pragma once

#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"
#include "storage/sqlite_connection.hpp"

namespace relaycore::storage {

// The schema this code writes and reads, kept in PRAGMA user_version. A database with a newer
// version is refused rather than misread.
inline constexpr int kSchemaVersion = 1;

// How long a connection waits for a lock held by another process before failing, in ms.
inline constexpr int kBusyTimeoutMs = 5000;

// Settings every connection needs: busy timeout, page cache, synchronous level, and the search
// function used by NIP-50 filters. The writer also switches the file to WAL.
Status configure_connection(SqliteConnection& conn, const SqliteOptions& options, bool writer);

// Creates the schema on a fresh database, or checks the version of an existing one. Runs on
// the writer connection before any reader opens.
Status ensure_schema(SqliteConnection& conn);

}  // namespace relaycore::storage
