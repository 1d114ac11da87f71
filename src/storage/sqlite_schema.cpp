#include "storage/sqlite_schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "relaycore/hex.hpp"
#include "storage/sqlite_checkpointer.hpp"
#include "storage/sqlite_search.hpp"
#include "storage/sqlite_wal_buffer.hpp"
#include "storage/storage_util.hpp"
#include "util/cleanup_status.hpp"

namespace relaycore::storage {
namespace {

// Version 9, created by kCreateSchema's parts in order; user_version holds kSchemaVersion.
// Version 1 kept tag values as text; it was never deployed, so it is refused rather than
// migrated. Versions 2, 3 and 4 are migrated (kMigrateFrom2, then kDropSearchFrom4 for 4, then
// build_search_index), 2 to 7 get stored_bytes with last_seq (kCreateStoredBytes, which reads
// every event's JSON: seconds on a large file), which takes sqlite_sequence's mark
// (kLastSeqFromSequence), and 2 to 6 lose tags_seq (kDropTagsSeq). Version 8 gets
// stored_bytes.search_seq (kAddSearchSeq), which kCreateStoredBytes makes for the others.
//
// events.seq is the commit sequence, monotonic and never reused, even after the newest rows are
// deleted: the writer assigns it from stored_bytes.last_seq, the high-water mark, which it
// updates in the statement that already updates the byte count at the end of each commit.
// Files made before version 8 keep AUTOINCREMENT on the column (only rebuilding the table would
// drop it), and SQLite keeps their sqlite_sequence in step with the seqs the writer assigns; it
// cost every insert a read and a write of sqlite_sequence, and every commit its page.
// events.d_tag is the replacement slot: '' for replaceable kinds, the d tag for addressable
// kinds, NULL for everything else. events.json is the canonical Event::json(), served as is.
constexpr const char* kCreateEvents = R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  id BLOB NOT NULL UNIQUE,
  pubkey BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  d_tag TEXT,
  expiration INTEGER,
  json TEXT NOT NULL
);
CREATE INDEX events_slot ON events (pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
CREATE INDEX events_expiration ON events (expiration) WHERE expiration IS NOT NULL;
)sql";

// The history indexes, one per filter shape a REQ pages through: author + kind, author, kind,
// and no condition. Each ends in the NIP-01 result order, created_at DESC then id, so that a
// limited query reads its rows in order and stops at the limit; an index ending at created_at
// left every run of equal created_at to be sorted in full (a million rows on a store where all
// events share one timestamp). The id costs the writer 32 bytes per entry in each.
//
// Every index costs the writer a B-tree insert per row, and the random-keyed ones (id, author,
// tag value) dirty a page of their own in nearly every commit. events_pubkey_created_id stays
// although events_pubkey_kind_created_id covers its rows: without it, authors + limit sorts all
// of a prolific author's events (p99 5 -> 105 ms on 1M events, benchmarks/README.md).
constexpr const char* kCreateHistoryIndexes = R"sql(
CREATE INDEX events_pubkey_created_id ON events (pubkey, created_at DESC, id);
CREATE INDEX events_pubkey_kind_created_id ON events (pubkey, kind, created_at DESC, id);
CREATE INDEX events_kind_created_id ON events (kind, created_at DESC, id);
CREATE INDEX events_created_id ON events (created_at DESC, id);
)sql";

// tags holds the first value of each single-letter tag (NIP-01 indexes only those), keyed in
// the NIP-01 result order under the value, with the event's created_at and id, so that a tag
// lookup comes out in that order from the key alone and stops at the limit. seq joins a row to
// its event. A value that is 64 lowercase hex digits (event ids and pubkeys, nearly every e/p
// tag) is stored as its 32 bytes (tag_key()), which halves that index; other values stay text.
// Filters bind such values as blobs too (bind_params). seq is declared after the key: SQLite
// 3.40's integrity_check reports false NULLs in a NOT NULL column placed before the key columns
// of a WITHOUT ROWID table. There is no index by seq: removing an event deletes its rows by the
// keys its own tags give (sqlite_write.cpp), and such an index cost every stored tag a B-tree
// insert and the writer about half a WAL page per event at a few events per commit.
constexpr const char* kCreateTags = R"sql(
CREATE TABLE tags (
  name TEXT NOT NULL,
  value NOT NULL,
  created_at INTEGER NOT NULL,
  id BLOB NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (name, value, created_at DESC, id)
) WITHOUT ROWID;
)sql";

// deleted_ids and deleted_addresses are NIP-09 tombstones: they outlive the events they name,
// so that re-publishing a deleted event is refused.
constexpr const char* kCreateTombstones = R"sql(
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
)sql";

// events_search is the NIP-50 index: FTS5 over each event's content, tokenized as
// protocol/search_text.hpp describes, keyed by the event's seq. It holds only which events
// contain each word: contentless (content='', the text is not stored a second time), without
// positions (detail=none: searches never ask for phrases or nearness) and without per-event
// word counts (columnsize=0); the ranking reads the candidates' content instead
// (sqlite_search.cpp). The writer adds and removes an event's words in the transaction that
// stores or removes the event (sqlite_write.cpp). Not triggers: a statement that fires a trigger
// runs in a statement transaction, FTS5 writes out its pending words at every such savepoint,
// and so a trigger made every stored event a one-event segment to merge, through a statement
// journal on disk (4 times fewer events per second).
constexpr const char* kCreateSearch = R"sql(
CREATE VIRTUAL TABLE events_search USING fts5(
  content, content = '', detail = none, columnsize = 0,
  tokenize = 'unicode61 remove_diacritics 2'
);
)sql";

// stored_bytes is one row of running totals. bytes is the size of the stored events' JSON, which
// Storage::size_bytes reports and RetentionRules::max_bytes limits; last_seq is the highest
// events.seq ever assigned (see kCreateEvents), which Storage::max_seq reports. The writer adds
// what a transaction stored and subtracts what it removed, and sets last_seq, in one UPDATE at
// the end of the transaction (sqlite_write.cpp), so the total drops as soon as rows are deleted,
// before any VACUUM. search_seq is the search index's mark: the words of every event stored at
// a seq up to it are in events_search, those of the events above it not yet (sqlite_search.hpp);
// the writer moves it when it adds a batch. Not triggers: see kCreateSearch. It is built from the
// events whatever the file held before, so that a migration from an older version that a newer
// build once opened starts right.
constexpr const char* kCreateStoredBytes = R"sql(
DROP TABLE IF EXISTS stored_bytes;
CREATE TABLE stored_bytes (
  bytes INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  search_seq INTEGER NOT NULL
);
INSERT INTO stored_bytes (bytes, last_seq, search_seq)
  SELECT coalesce(sum(length(CAST(json AS BLOB))), 0), coalesce(max(seq), 0),
         coalesce(max(seq), 0) FROM events;
)sql";

// Version 8 to 9: every event a version 8 writer stored is in the search index.
constexpr const char* kAddSearchSeq = R"sql(
ALTER TABLE stored_bytes ADD COLUMN search_seq INTEGER NOT NULL DEFAULT 0;
UPDATE stored_bytes SET search_seq = last_seq;
)sql";

// Versions 2 to 7 to 8: their high-water mark was sqlite_sequence's, which is above every stored
// seq once the newest events have been deleted. A file without sqlite_sequence never had
// AUTOINCREMENT, and kCreateStoredBytes took its mark from the events.
constexpr const char* kHasSequence =
    "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'";
constexpr const char* kLastSeqFromSequence = R"sql(
UPDATE stored_bytes SET last_seq =
  max(last_seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0));
)sql";

constexpr const char* kCreateSchema[] = {kCreateEvents, kCreateHistoryIndexes,
                                         kCreateTags,   kCreateTombstones,
                                         kCreateSearch, kCreateStoredBytes};

// Version 2 to 3. Version 2's history indexes ended at created_at (events_pubkey_created,
// events_pubkey_kind_created, events_kind_created, events_created) and its tags were keyed
// (name, value, created_at, seq) without the id. The old indexes are dropped, the new ones
// built, and the tag rows copied into the new table with their event's id; the rest of the
// file is unchanged.
constexpr const char* kMigrateFrom2[] = {
    R"sql(
DROP INDEX events_pubkey_created;
DROP INDEX events_pubkey_kind_created;
DROP INDEX events_kind_created;
DROP INDEX events_created;
DROP INDEX tags_seq;
ALTER TABLE tags RENAME TO tags_v2;
)sql",
    kCreateHistoryIndexes,
    kCreateTags,
    R"sql(
INSERT INTO tags (seq, name, value, created_at, id)
  SELECT t.seq, t.name, t.value, t.created_at, e.id FROM tags_v2 AS t JOIN events AS e
  ON e.seq = t.seq ORDER BY t.name, t.value, t.created_at DESC, e.id;
DROP TABLE tags_v2;
)sql",
};

// Planner statistics, shaped like a real relay's: an author has a few hundred events, a kind
// has a great many, a tag value a handful. Without them SQLite guesses that `kind IN (...)` is
// selective and walks the kind index for "#e=X kinds=[7]" or "authors + kinds", scanning every
// reaction or note to find a few. A later ANALYZE replaces these with measured numbers. Each
// stat is: rows, then rows per distinct prefix of the index columns. They replace whatever the
// file held: after a migration, measured numbers for the kept indexes beside these guesses for
// the new ones would mislead the planner more than a consistent set of guesses.
constexpr const char* kPlannerStats = R"sql(
ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
  ('events', 'sqlite_autoindex_events_1', '1000000 1'),
  ('events', 'events_pubkey_created_id', '1000000 200 2 1'),
  ('events', 'events_pubkey_kind_created_id', '1000000 200 40 2 1'),
  ('events', 'events_kind_created_id', '1000000 10000 2 1'),
  ('events', 'events_created_id', '1000000 2 1'),
  ('events', 'events_slot', '1000000 200 40 1'),
  ('events', 'events_expiration', '1000 2'),
  ('tags', 'tags', '5000000 500000 20 20 1');
)sql";

// Versions 3 to 6 to 8: the index of tags by seq goes (see kCreateTags). Version 2's is dropped
// with its tags table (kMigrateFrom2).
constexpr const char* kDropTagsSeq = "DROP INDEX IF EXISTS tags_seq;";

// Version 4 to 5: version 4's search index kept word positions and counts and was written by
// triggers; both go, and the index is built again in the version 5 form.
constexpr const char* kDropSearchFrom4 = R"sql(
DROP TRIGGER IF EXISTS events_search_insert;
DROP TRIGGER IF EXISTS events_search_delete;
DROP TABLE events_search;
)sql";

static_assert(kSchemaVersion == 9, "update kCreateSchema and add a migration");

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

// Versions 3 and 4 to 5: the search index over the events already stored, built in batches of
// this many seqs with a log line after each, since a large file takes minutes.
constexpr std::int64_t kIndexBatch = 100000;
constexpr std::string_view kIndexRange =
    "INSERT INTO events_search (rowid, content) SELECT seq, json_extract(json, '$.content') "
    "FROM events WHERE seq > ?1 AND seq <= ?2";

Status build_search_index(SqliteConnection& conn, Logger* log) {
  if (Status s = conn.exec(kCreateSearch, "cannot create the search index"); !s) return s;
  auto high = pragma_text(conn, "SELECT coalesce(max(seq), 0) FROM events");
  if (!high) return std::move(high).error();
  auto total = pragma_text(conn, "SELECT count(*) FROM events");
  if (!total) return std::move(total).error();
  const std::int64_t last = std::stoll(*high);
  if (log) {
    log->log(LogLevel::kInfo,
             fmt::format("storage: building the search index over {} events", *total));
  }
  auto stmt = conn.prepare(kIndexRange);
  if (!stmt) return std::move(stmt).error();
  for (std::int64_t from = 0; from < last; from += kIndexBatch) {
    StatementScope scope(*stmt);
    bind_int(*stmt, 1, from);
    bind_int(*stmt, 2, from + kIndexBatch);
    if (const int rc = sqlite3_step(*stmt); rc != SQLITE_DONE) {
      return sqlite_error("cannot build the search index", rc);
    }
    if (log) {
      log->log(LogLevel::kInfo,
               fmt::format("storage: search index: events up to seq {} of {} indexed",
                           std::min(from + kIndexBatch, last), last));
    }
  }
  if (log) log->log(LogLevel::kInfo, "storage: search index built");
  return Status::ok();
}

// kLastSeqFromSequence, where there is a sqlite_sequence.
Status last_seq_from_sequence(SqliteConnection& conn) {
  auto has = pragma_text(conn, kHasSequence);
  if (!has) return std::move(has).error();
  if (*has == "0") return Status::ok();
  return conn.exec(kLastSeqFromSequence, "cannot migrate the schema");
}

// Runs the DDL `steps` in order.
Status run_steps(SqliteConnection& conn, std::span<const char* const> steps,
                 std::string_view what) {
  for (const char* sql : steps) {
    if (Status s = conn.exec(sql, what); !s) return s;
  }
  return Status::ok();
}

// Records kSchemaVersion and writes the planner statistics: creating the schema and migrating
// to it end the same way.
Status finish_schema(SqliteConnection& conn, std::string_view what) {
  const std::string version = "PRAGMA user_version = " + std::to_string(kSchemaVersion);
  if (Status s = conn.exec(version.c_str(), what); !s) return s;
  return conn.exec(kPlannerStats, what);
}

}  // namespace

Status configure_connection(SqliteConnection& conn, const SqliteOptions& options, bool writer) {
  sqlite3_busy_timeout(conn.handle(), kBusyTimeoutMs);
  if (Status s = register_search_function(conn.handle()); !s) return s;
  const std::string cache = fmt::format("PRAGMA cache_size = -{}", options.cache_kib);
  if (Status s = conn.exec(cache.c_str(), "cannot set the cache size"); !s) return s;
  const char* sync = options.synchronous == SqliteSync::kFull ? "PRAGMA synchronous = FULL"
                                                              : "PRAGMA synchronous = NORMAL";
  if (Status s = conn.exec(sync, "cannot set synchronous"); !s) return s;
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
  // SqliteCheckpointer takes this over; should it not start, SQLite checkpoints on the writer's
  // thread at the same length.
  const std::string checkpoint = fmt::format("PRAGMA wal_autocheckpoint = {}",
                                             checkpoint_threshold(options.checkpoint_frames));
  return conn.exec(checkpoint.c_str(), "cannot set the checkpoint interval");
}

Status ensure_schema(SqliteConnection& conn, Logger* log) {
  if (Status s = conn.exec("BEGIN IMMEDIATE", "cannot open the schema"); !s) return s;
  auto version = pragma_text(conn, "PRAGMA user_version");
  Status status;
  if (!version) {
    status = std::move(version).error();
  } else if (*version == "0") {
    status = run_steps(conn, kCreateSchema, "cannot create the schema");
    if (status) status = finish_schema(conn, "cannot create the schema");
  } else if (*version == "8") {
    status = conn.exec(kAddSearchSeq, "cannot migrate the schema");
    if (status) status = finish_schema(conn, "cannot migrate the schema");
  } else if (*version >= "2" && *version <= "7" && version->size() == 1) {
    if (*version == "2") status = run_steps(conn, kMigrateFrom2, "cannot migrate the schema");
    if (*version == "4") status = conn.exec(kDropSearchFrom4, "cannot migrate the schema");
    if (status && *version <= "4") status = build_search_index(conn, log);
    if (status) status = conn.exec(kCreateStoredBytes, "cannot migrate the schema");
    if (status) status = last_seq_from_sequence(conn);
    if (status) status = conn.exec(kDropTagsSeq, "cannot migrate the schema");
    if (status) status = finish_schema(conn, "cannot migrate the schema");
  } else if (*version == "1") {
    // Never deployed (see kCreateSchema), so there is no migration to run.
    status = Status::error(
        "storage: the database has schema version 1 of a development build; start a new file");
  } else if (*version != std::to_string(kSchemaVersion)) {
    status = Status::error(
        fmt::format("storage: the database has an unknown schema version {}", *version));
  }
  if (status) status = configure_search_merging(conn);
  if (!status) return with_cleanup(status, conn.exec("ROLLBACK", "cannot roll back"));
  if (Status s = conn.exec("COMMIT", "cannot create the schema"); !s) {
    if (sqlite3_get_autocommit(conn.handle()) != 0) return s;
    return with_cleanup(s, conn.exec("ROLLBACK", "cannot roll back"));
  }
  // Loads the statistics into this connection; readers, opened later, load them on open.
  return conn.exec("ANALYZE sqlite_schema", "cannot load planner statistics");
}

}  // namespace relaycore::storage
