#include "postgres/pg_schema.hpp"

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "protocol/search_text.hpp"
#include "storage/storage_util.hpp"
#include "util/cleanup_status.hpp"

namespace relaycore::postgres {
namespace {

// Held (for the transaction) by whoever creates or migrates the schema, so that nodes starting
// together take turns. The value is arbitrary: "rlycore" in ASCII.
constexpr std::int64_t kSchemaLockKey = 0x726c79636f7265;

// Migration i brings the schema from version i to i + 1; the version reached is kept in
// relaycore_schema. A new release appends a step and never edits an old one.
//
// Version 1, the shape of the SQLite schema (src/storage/sqlite_schema.cpp):
// events.seq is the commit sequence, from one sequence every node shares. events.d_tag is the
// replacement slot: '' for replaceable kinds, the d tag for addressable kinds, NULL otherwise.
// events.json is the canonical Event::json(), served as is. Tag names and values, and d tags,
// are bytea because NIP-01 strings may hold NUL, which text cannot.
// tags holds the first value of each single-letter tag, with the event's created_at so that a
// tag lookup comes out in time order from the index alone; rows go with their event.
// deleted_ids and deleted_addresses are NIP-09 tombstones that outlive the events they name.
//
// Version 2: history reads in NIP-01 order straight from an index. The history indexes end in
// (created_at DESC, id), the result order, so that a limited query stops at its limit instead
// of sorting every run of equal created_at (all of them, on a store where every event has one
// timestamp). tags gains the event's id, and its key becomes the unique index (name, value,
// created_at DESC, id); a primary key cannot be DESC, and a backward scan of an ascending one
// would give the ids descending. The tag rows are copied into a new table rather than
// updated in place, which would leave a dead copy of every row behind; the foreign key is
// added after the copy, checked in one pass instead of row by row.
//
// Version 3: NIP-50 search. events.search is the tsvector of the content's words as
// protocol/search_text.hpp tokenizes them (the writer sends the words; the 'simple'
// configuration keeps each whole), so that PostgreSQL finds what SQLite and the live matcher
// find; a GIN index serves the @@ match. Rows stored before it are filled by backfill_search.
//
// Version 4: relaycore_stored_bytes, the bytes of the stored events' JSON, which
// Storage::size_bytes reports and RetentionRules::max_bytes limits (the tables' sizes on disk
// shrink only after a VACUUM FULL, so they cannot tell what a removal freed). Statement
// triggers keep it in the transaction that inserts or deletes the rows, whatever the path
// (replacement, deletion, expiry, erase). The total is spread over slots, one per writer
// connection (its backend pid modulo 64), so that the nodes sharing a database do not queue
// behind one row's lock; size_bytes adds the slots up. The json column is never updated.
//
// Version 5: tags loses its foreign key and its index by seq, which cost every stored tag a
// B-tree insert. Removing an event deletes its tag rows by the keys its own tags give, in the
// statement that deletes the event (pg_write.cpp): relaycore_tag_keys reads them from the
// stored JSON as the writer stored them (storage::is_indexed_tag: a single-letter name and
// the first value, both as their UTF-8 bytes). It gives NULLs when the JSON does not give
// them: not JSON, not this event's (altered outside relaycore), or a value holding NUL, which
// text cannot; such an event's rows are then found by a scan of tags by seq.
constexpr std::array<const char*, 5> kMigrations = {
    R"sql(
CREATE SEQUENCE relaycore_event_seq AS bigint;
CREATE TABLE events (
  seq bigint PRIMARY KEY DEFAULT nextval('relaycore_event_seq'),
  id bytea NOT NULL UNIQUE,
  pubkey bytea NOT NULL,
  created_at bigint NOT NULL,
  kind integer NOT NULL,
  d_tag bytea,
  expiration bigint,
  json text NOT NULL
);
ALTER SEQUENCE relaycore_event_seq OWNED BY events.seq;
CREATE INDEX events_pubkey_created ON events (pubkey, created_at);
CREATE INDEX events_pubkey_kind_created ON events (pubkey, kind, created_at);
CREATE INDEX events_kind_created ON events (kind, created_at);
CREATE INDEX events_created ON events (created_at);
CREATE INDEX events_slot ON events (pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
CREATE INDEX events_expiration ON events (expiration) WHERE expiration IS NOT NULL;

CREATE TABLE tags (
  seq bigint NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
  name bytea NOT NULL,
  value bytea NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (name, value, created_at, seq)
);
CREATE INDEX tags_seq ON tags (seq);

CREATE TABLE deleted_ids (
  id bytea NOT NULL,
  pubkey bytea NOT NULL,
  PRIMARY KEY (id, pubkey)
);

CREATE TABLE deleted_addresses (
  kind integer NOT NULL,
  pubkey bytea NOT NULL,
  d bytea NOT NULL,
  up_to bigint NOT NULL,
  PRIMARY KEY (kind, pubkey, d)
);
)sql",
    R"sql(
DROP INDEX events_pubkey_created;
DROP INDEX events_pubkey_kind_created;
DROP INDEX events_kind_created;
DROP INDEX events_created;
CREATE INDEX events_pubkey_created_id ON events (pubkey, created_at DESC, id);
CREATE INDEX events_pubkey_kind_created_id ON events (pubkey, kind, created_at DESC, id);
CREATE INDEX events_kind_created_id ON events (kind, created_at DESC, id);
CREATE INDEX events_created_id ON events (created_at DESC, id);

DROP INDEX tags_seq;
ALTER TABLE tags RENAME TO tags_v1;
CREATE TABLE tags (
  seq bigint NOT NULL,
  name bytea NOT NULL,
  value bytea NOT NULL,
  created_at bigint NOT NULL,
  id bytea NOT NULL
);
INSERT INTO tags (seq, name, value, created_at, id)
  SELECT t.seq, t.name, t.value, t.created_at, e.id FROM tags_v1 AS t JOIN events AS e
  ON e.seq = t.seq;
DROP TABLE tags_v1;
CREATE UNIQUE INDEX tags_value_created_id ON tags (name, value, created_at DESC, id);
CREATE INDEX tags_seq ON tags (seq);
ALTER TABLE tags ADD FOREIGN KEY (seq) REFERENCES events (seq) ON DELETE CASCADE;
ANALYZE events;
ANALYZE tags;
)sql",
    R"sql(
ALTER TABLE events ADD COLUMN search tsvector;
CREATE INDEX events_search ON events USING gin (search);
)sql",
    R"sql(
CREATE TABLE relaycore_stored_bytes (
  slot integer PRIMARY KEY,
  bytes bigint NOT NULL
);
INSERT INTO relaycore_stored_bytes (slot, bytes)
  SELECT 0, coalesce(sum(octet_length(json)), 0) FROM events;
CREATE FUNCTION relaycore_count_stored_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  delta bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT coalesce(sum(octet_length(json)), 0) INTO delta FROM relaycore_new_rows;
  ELSE
    SELECT -coalesce(sum(octet_length(json)), 0) INTO delta FROM relaycore_old_rows;
  END IF;
  IF delta <> 0 THEN
    INSERT INTO relaycore_stored_bytes AS s (slot, bytes) VALUES (pg_backend_pid() % 64, delta)
      ON CONFLICT (slot) DO UPDATE SET bytes = s.bytes + excluded.bytes;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER relaycore_stored_bytes_insert AFTER INSERT ON events
  REFERENCING NEW TABLE AS relaycore_new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION relaycore_count_stored_bytes();
CREATE TRIGGER relaycore_stored_bytes_delete AFTER DELETE ON events
  REFERENCING OLD TABLE AS relaycore_old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION relaycore_count_stored_bytes();
)sql",
    R"sql(
ALTER TABLE tags DROP CONSTRAINT tags_seq_fkey;
DROP INDEX tags_seq;
CREATE FUNCTION relaycore_tag_keys(doc text, event_id bytea, OUT names bytea[],
                                   OUT tag_values bytea[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
  event json;
BEGIN
  event := doc::json;
  IF (event ->> 'id') IS DISTINCT FROM encode(event_id, 'hex') THEN
    RETURN;
  END IF;
  SELECT coalesce(array_agg(convert_to(t ->> 0, 'UTF8')), '{}'),
         coalesce(array_agg(convert_to(t ->> 1, 'UTF8')), '{}')
    INTO names, tag_values
    FROM json_array_elements(event -> 'tags') AS t
    WHERE json_array_length(t) >= 2 AND octet_length(t ->> 0) = 1 AND (t ->> 0) ~ '^[A-Za-z]$';
EXCEPTION WHEN others THEN
  names := NULL;
  tag_values := NULL;
END
$$;
)sql",
};

// Rows read and updated per round trip by backfill_search.
constexpr int kBackfillBatch = 5000;

// Fills events.search for the rows stored before version 3, in seq order, in batches.
Status backfill_search(PgConnection& conn) {
  std::int64_t after = 0;
  for (;;) {
    PgParams read;
    read.add_int(after).add_int(kBackfillBatch);
    auto rows = conn.exec(
        "SELECT seq, id, json FROM events WHERE search IS NULL AND seq > $1 ORDER BY seq LIMIT $2",
        read, /*prepare=*/false);
    if (!rows) return std::move(rows).error();
    const int n = PQntuples(rows->get());
    if (n == 0) return Status::ok();
    std::vector<std::int64_t> seqs;
    std::vector<std::string> texts;
    for (int i = 0; i < n; ++i) {
      seqs.push_back(get_int(rows->get(), i, 0));
      EventId id;
      if (!get_bytes32(rows->get(), i, 1, id)) {
        return Status::error("storage: a stored event id is unreadable");
      }
      auto event = storage::load_stored_row(std::string(get_bytes(rows->get(), i, 2)), id);
      if (!event) return std::move(event).error();
      texts.push_back(search_document(event.value()->content()));
    }
    after = seqs.back();
    std::vector<std::string_view> views(texts.begin(), texts.end());
    PgParams update;
    update.add_int_array(seqs).add_bytes_array(views);
    auto done = conn.exec(
        "UPDATE events SET search = to_tsvector('simple', convert_from(x.t, 'UTF8')) "
        "FROM unnest($1::bigint[], $2::bytea[]) AS x(seq, t) WHERE events.seq = x.seq",
        update, /*prepare=*/false);
    if (!done) return std::move(done).error();
  }
}

static_assert(kMigrations.size() == kSchemaVersion, "one migration per schema version");

}  // namespace

std::string search_document(std::string_view content) {
  std::string out;
  for (const std::string& w : search::words(content)) {
    if (!out.empty()) out.push_back(' ');
    out.append(w);
  }
  return out;
}

std::string_view migration_sql(std::int64_t from) {
  return kMigrations[static_cast<std::size_t>(from)];
}

namespace {

Status create_or_migrate(PgConnection& conn) {
  PgParams lock;
  lock.add_int(kSchemaLockKey);
  auto locked = conn.exec("SELECT pg_advisory_xact_lock($1)", lock, /*prepare=*/false);
  if (!locked) return std::move(locked).error();
  if (Status s = conn.run("CREATE TABLE IF NOT EXISTS relaycore_schema (version integer NOT NULL)",
                          "cannot create the schema");
      !s) {
    return s;
  }
  auto version = conn.exec("SELECT version::bigint FROM relaycore_schema", PgParams(), false);
  if (!version) return std::move(version).error();
  std::int64_t current = 0;
  if (PQntuples(version->get()) > 1) return Status::error("storage: relaycore_schema is corrupt");
  if (PQntuples(version->get()) == 1) current = get_int(version->get(), 0, 0);
  if (current > kSchemaVersion || current < 0) {
    return Status::error("storage: the database has an unknown schema version " +
                         std::to_string(current));
  }
  for (std::int64_t v = current; v < kSchemaVersion; ++v) {
    if (Status s = conn.run(migration_sql(v), "cannot migrate the schema"); !s) {
      return s;
    }
  }
  if (current > 0 && current < 3) {
    if (Status s = backfill_search(conn); !s) return s;
  }
  if (current == kSchemaVersion) return Status::ok();
  const std::string set = (current == 0 ? "INSERT INTO relaycore_schema (version) VALUES ("
                                        : "UPDATE relaycore_schema SET version = (") +
                          std::to_string(kSchemaVersion) + ")";
  return conn.run(set, "cannot record the schema version");
}

}  // namespace

Status ensure_schema(PgConnection& conn) {
  if (Status s = conn.begin(); !s) return s;
  Status status = create_or_migrate(conn);
  if (status) return conn.commit();
  return with_cleanup(status, conn.rollback());
}

}  // namespace relaycore::postgres
