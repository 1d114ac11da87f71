#include "storage/sqlite_schema.hpp"

#include <fmt/format.h>

#include <cstring>
#include <string>
#include <utility>

#include "relaycore/hex.hpp"
#include "storage/sqlite_wal_buffer.hpp"
#include "storage/storage_util.hpp"
#include "util/cleanup_status.hpp"

namespace relaycore::storage {
namespace {

// Version 2 (the user_version line at the end must match kSchemaVersion). Version 1 kept tag
// values as text; it was never deployed, so it is refused rather than migrated.
//
// events.seq is the commit sequence: AUTOINCREMENT keeps it monotonic and never reuses a value,
// even after the newest rows are deleted (sqlite_sequence remembers the high-water mark).
// events.d_tag is the replacement slot: '' for replaceable kinds, the d tag for addressable
// kinds, NULL for everything else. events.json is the canonical Event::json(), served as is.
//
// Every index costs the writer a B-tree insert per row, and the random-keyed ones (id, author,
// tag value) dirty a page of their own in nearly every commit. events_pubkey_created stays
// although events_pubkey_kind_created covers its rows: without it, authors + limit sorts all
// of a prolific author's events (p99 5 -> 105 ms on 1M events, benchmarks/README.md).
//
// tags holds the first value of each single-letter tag (NIP-01 indexes only those), with the
// event's created_at so that a tag lookup comes out in time order from the index alone. A value
// that is 64 lowercase hex digits (event ids and pubkeys, nearly every e/p tag) is stored as its
// 32 bytes (tag_key()), which halves that index; other values stay text. Filters bind such
// values as blobs too (bind_params).
//
// deleted_ids and deleted_addresses are NIP-09 tombstones: they outlive the events they name,
// so that re-publishing a deleted event is refused.
constexpr const char* kCreateSchema = R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id BLOB NOT NULL UNIQUE,
  pubkey BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  d_tag TEXT,
  expiration INTEGER,
  json TEXT NOT NULL
);
CREATE INDEX events_pubkey_created ON events (pubkey, created_at);
CREATE INDEX events_pubkey_kind_created ON events (pubkey, kind, created_at);
CREATE INDEX events_kind_created ON events (kind, created_at);
CREATE INDEX events_created ON events (created_at);
CREATE INDEX events_slot ON events (pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
CREATE INDEX events_expiration ON events (expiration) WHERE expiration IS NOT NULL;

CREATE TABLE tags (
  seq INTEGER NOT NULL,
  name TEXT NOT NULL,
  value NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (name, value, created_at, seq)
) WITHOUT ROWID;
CREATE INDEX tags_seq ON tags (seq);

CREATE TABLE deleted_ids (
  id BLOB NOT NULL,
  pubkey BLOB NOT NULL,
  PRIMARY KEY (id, pubkey)
) WITHOUT ROWID;

CREATE TABLE deleted_addresses (
  kind INTEGER NOT NULL,
  pubkey BLOB NOT NULL,
  d TEXT NOT NULL,
  up_to INTEGER NOT NULL,
  PRIMARY KEY (kind, pubkey, d)
) WITHOUT ROWID;

PRAGMA user_version = 2;
)sql";

// Planner statistics for a fresh database, shaped like a real relay's: an author has a few
// hundred events, a kind has a great many, a tag value a handful. Without them SQLite guesses
// that `kind IN (...)` is selective and walks the kind index for "#e=X kinds=[7]" or "authors
// + kinds", scanning every reaction or note to find a few. A later ANALYZE replaces these with
// measured numbers. Each stat is: rows, then rows per distinct prefix of the index columns.
constexpr const char* kPlannerStats = R"sql(
ANALYZE sqlite_schema;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
  ('events', 'sqlite_autoindex_events_1', '1000000 1'),
  ('events', 'events_pubkey_created', '1000000 200 2'),
  ('events', 'events_pubkey_kind_created', '1000000 200 40 2'),
  ('events', 'events_kind_created', '1000000 10000 2'),
  ('events', 'events_created', '1000000 2'),
  ('events', 'events_slot', '1000000 200 40 1'),
  ('events', 'events_expiration', '1000 2'),
  ('tags', 'tags', '5000000 500000 20 20 1'),
  ('tags', 'tags_seq', '5000000 5');
)sql";

static_assert(kSchemaVersion == 2, "update kCreateSchema and add a migration");

// relaycore_search(json, needle): the basic NIP-50 match over an event's content.
void search_function(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (argc != 2) {
    sqlite3_result_int(ctx, 0);
    return;
  }
  const auto* json = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  const auto* needle = reinterpret_cast<const char*>(sqlite3_value_text(argv[1]));
  if (json == nullptr || needle == nullptr) {
    sqlite3_result_int(ctx, 0);
    return;
  }
  const std::string_view json_view(json, static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
  const std::string_view needle_view(needle,
                                     static_cast<std::size_t>(sqlite3_value_bytes(argv[1])));
  sqlite3_result_int(ctx, json_content_contains(json_view, needle_view) ? 1 : 0);
}

Result<std::string> pragma_text(SqliteConnection& conn, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(conn.handle(), sql, -1, &stmt, nullptr);
  std::string value;
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) value = std::string(column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlite_error("cannot read a setting", rc);
  return value;
}

}  // namespace

Status configure_connection(SqliteConnection& conn, const SqliteOptions& options, bool writer) {
  sqlite3_busy_timeout(conn.handle(), kBusyTimeoutMs);
  const std::string cache = fmt::format("PRAGMA cache_size = -{}", options.cache_kib);
  if (Status s = conn.exec(cache.c_str(), "cannot set the cache size"); !s) return s;
  const char* sync = options.synchronous == SqliteSync::kFull ? "PRAGMA synchronous = FULL"
                                                              : "PRAGMA synchronous = NORMAL";
  if (Status s = conn.exec(sync, "cannot set synchronous"); !s) return s;
  const int rc = sqlite3_create_function_v2(conn.handle(), "relaycore_search", 2,
                                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                            nullptr, search_function, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error("cannot register the search function", rc);
  if (!writer) return Status::ok();
  // Only with synchronous=FULL does every commit sync, and so flush, the WAL (the buffer's
  // safety rests on that).
  if (options.synchronous == SqliteSync::kFull && options.buffer_wal_writes) {
    if (Status s = enable_wal_buffering(conn.handle()); !s) return s;
  }
  // WAL lets readers run beside the one writer. It is persistent, but set on every open in case
  // the file was created by something else.
  auto mode = pragma_text(conn, "PRAGMA journal_mode = WAL");
  if (!mode) return std::move(mode).error();
  if (*mode != "wal") return Status::error("storage: the database cannot use WAL mode");
  // Checkpoint once the WAL holds 64 MiB rather than SQLite's 4 MiB. A group commit of random
  // ids and tag values dirties pages all over the id and tag indexes; with the default, nearly
  // every commit also copied all of them back into the database file, and the same pages again
  // on the next commit. Durability is unchanged: a commit is durable once its WAL frames are
  // synced (synchronous=FULL), whenever the checkpoint runs. Measured in
  // benchmarks/README.md (in-process ingest).
  return conn.exec("PRAGMA wal_autocheckpoint = 16384", "cannot set the checkpoint interval");
}

Status ensure_schema(SqliteConnection& conn) {
  if (Status s = conn.exec("BEGIN IMMEDIATE", "cannot open the schema"); !s) return s;
  auto version = pragma_text(conn, "PRAGMA user_version");
  Status status;
  if (!version) {
    status = std::move(version).error();
  } else if (*version == "0") {
    status = conn.exec(kCreateSchema, "cannot create the schema");
    if (status) status = conn.exec(kPlannerStats, "cannot create the schema");
  } else if (*version == "1") {
    // Never deployed (see kCreateSchema), so there is no migration to run.
    status = Status::error(
        "storage: the database has schema version 1 of a development build; start a new file");
  } else if (*version != std::to_string(kSchemaVersion)) {
    status = Status::error(
        fmt::format("storage: the database has an unknown schema version {}", *version));
  }
  if (!status) return with_cleanup(status, conn.exec("ROLLBACK", "cannot roll back"));
  if (Status s = conn.exec("COMMIT", "cannot create the schema"); !s) {
    if (sqlite3_get_autocommit(conn.handle()) != 0) return s;
    return with_cleanup(s, conn.exec("ROLLBACK", "cannot roll back"));
  }
  // Loads the statistics into this connection; readers, opened later, load them on open.
  return conn.exec("ANALYZE sqlite_schema", "cannot load planner statistics");
}

}  // namespace relaycore::storage
