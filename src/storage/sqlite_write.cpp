#include "storage/sqlite_write.hpp"

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "relaycore/storage_rules.hpp"
#include "storage/sqlite_schema.hpp"
#include "storage/sqlite_search_backlog.hpp"
#include "storage/storage_util.hpp"
#include "util/cleanup_status.hpp"

namespace relaycore::storage {
namespace {

constexpr std::string_view kFind = "SELECT pubkey, created_at, kind, seq FROM events WHERE id = ?1";
constexpr std::string_view kIdDeleted = "SELECT 1 FROM deleted_ids WHERE id = ?1 AND pubkey = ?2";
constexpr std::string_view kAddressDeleted =
    "SELECT up_to FROM deleted_addresses WHERE kind = ?1 AND pubkey = ?2 AND d = ?3";
constexpr std::string_view kVersions =
    "SELECT id, created_at, seq FROM events WHERE pubkey = ?1 AND kind = ?2 AND d_tag = ?3";
// What removing an event needs of its row: its seq, its JSON (its tags, to find its tag rows,
// and its size, for stored_bytes) and its content as json_extract reads it (for unindex()), NULL
// for JSON that is not valid (json_extract would fail the statement).
constexpr std::string_view kFindRemoved =
    "SELECT seq, json, CASE WHEN json_valid(json) THEN json_extract(json, '$.content') END "
    "FROM events WHERE id = ?1";
constexpr std::string_view kRemoveTag =
    "DELETE FROM tags WHERE name = ?1 AND value = ?2 AND created_at = ?3 AND id = ?4";
// Only for a row whose JSON does not load or is another event's: a scan of every tag row.
constexpr std::string_view kRemoveTagsBySeq = "DELETE FROM tags WHERE seq = ?1";
constexpr std::string_view kRemoveEvent = "DELETE FROM events WHERE seq = ?1";
constexpr std::string_view kInsertEvent =
    "INSERT INTO events (id, pubkey, created_at, kind, d_tag, expiration, json, seq) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr std::string_view kInsertTag =
    "INSERT OR IGNORE INTO tags (seq, name, value, created_at, id) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr std::string_view kAddIdTombstone =
    "INSERT OR IGNORE INTO deleted_ids (id, pubkey) VALUES (?1, ?2)";
constexpr std::string_view kAddAddressTombstone =
    "INSERT INTO deleted_addresses (kind, pubkey, d, up_to) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (kind, pubkey, d) DO UPDATE SET up_to = max(up_to, excluded.up_to)";
constexpr std::string_view kPurgeEvents =
    "DELETE FROM events WHERE expiration <= ?1 "
    "RETURNING id, kind, seq, pubkey, "
    "CASE WHEN json_valid(json) THEN json_extract(json, '$.content') END, json";
// The running totals (sqlite_schema.cpp, stored_bytes): the stored events' JSON bytes and the
// last seq assigned.
constexpr std::string_view kAddStoredBytes = "UPDATE stored_bytes SET bytes = bytes + ?1";
constexpr std::string_view kAddStoredBytesAndSeq =
    "UPDATE stored_bytes SET bytes = bytes + ?1, last_seq = ?2";
constexpr std::string_view kAddStoredBytesAndSeqs =
    "UPDATE stored_bytes SET bytes = bytes + ?1, last_seq = ?2, search_seq = ?3";
constexpr std::string_view kAddStoredBytesAndSearchSeq =
    "UPDATE stored_bytes SET bytes = bytes + ?1, search_seq = ?3";
constexpr std::string_view kStoredBytes = "SELECT bytes FROM stored_bytes";
constexpr std::string_view kLastSeq = "SELECT last_seq FROM stored_bytes";
// The last seq assigned, as the transaction finds it.
Result<std::int64_t> read_last_seq(SqliteConnection& conn) {
  auto stmt = conn.prepare(kLastSeq);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  if (const int rc = sqlite3_step(*stmt); rc != SQLITE_ROW) {
    return sqlite_error("cannot read the last seq", rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
  }
  return sqlite3_column_int64(*stmt, 0);
}

Status step_done(sqlite3_stmt* stmt) {
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return sqlite_error("write failed", rc);
  return Status::ok();
}

// The event a row being removed holds, or null when its JSON was changed outside relaycore so
// that it does not load or is another event's.
EventPtr own_event(const EventId& id, std::string json) {
  Result<EventPtr> event = Event::load_stored(std::move(json));
  if (!event || (*event)->id() != id) return nullptr;
  return std::move(event).value();
}

// Deletes the tag rows of the event stored at `seq`, `own` (see own_event()), by the keys its own
// tags give: tags has no index by seq (sqlite_schema.cpp). Without the event, a scan of every tag
// row by seq.
Status remove_tags(SqliteConnection& conn, const Event* own, std::int64_t seq) {
  if (own == nullptr) {
    auto stmt = conn.prepare(kRemoveTagsBySeq);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_int(*stmt, 1, seq);
    return step_done(*stmt);
  }
  auto stmt = conn.prepare(kRemoveTag);
  if (!stmt) return std::move(stmt).error();
  for (const Tag& tag : own->tags()) {
    if (!is_indexed_tag(tag)) continue;
    std::optional<Bytes32> key;  // bound without a copy, so it outlives the scope
    StatementScope scope(*stmt);
    bind_text(*stmt, 1, tag[0]);
    bind_tag_value(*stmt, 2, tag[1], &key);
    bind_int(*stmt, 3, own->created_at());
    bind_bytes(*stmt, 4, own->id());
    if (Status s = step_done(*stmt); !s) return s;
  }
  return Status::ok();
}

// Removes what a removed event left in tags and its words, when they are in the search index
// (`in_index`: not when it has none, nor for an event still in its backlog). A row changed
// outside relaycore keeps its words in the search index: what it was indexed with is unknown,
// and removing other words would damage the index; searches are joined to events, so the words
// left behind match nothing.
Status remove_index_rows(SqliteConnection& conn, const EventId& id, std::int64_t seq,
                         std::string json, std::string_view content, bool in_index) {
  const EventPtr own = own_event(id, std::move(json));
  if (in_index && own) {
    if (Status s = unindex_words(conn, seq, content); !s) return s;
  }
  return remove_tags(conn, own.get(), seq);
}

// The WriteTarget primitives as SQL on the writer connection, inside its transaction. What it
// stores and removes goes to the search index's backlog through `search`.
class SqliteWriteTarget final : public WriteTarget {
 public:
  SqliteWriteTarget(SqliteConnection& conn, BacklogChange& search) : conn_(conn), search_(search) {}

  Result<std::optional<StoredRef>> find(const EventId& id) override {
    auto stmt = conn_.prepare(kFind);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_bytes(*stmt, 1, id);
    const int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_DONE) return std::optional<StoredRef>();
    if (rc != SQLITE_ROW) return sqlite_error("write failed", rc);
    StoredRef ref;
    ref.id = id;
    column_bytes(*stmt, 0, ref.pubkey);
    ref.created_at = sqlite3_column_int64(*stmt, 1);
    ref.kind = static_cast<std::uint16_t>(sqlite3_column_int(*stmt, 2));
    ref.seq = static_cast<std::uint64_t>(sqlite3_column_int64(*stmt, 3));
    return std::optional<StoredRef>(ref);
  }

  Result<bool> id_deleted(const EventId& id, const Pubkey& author) override {
    auto stmt = conn_.prepare(kIdDeleted);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_bytes(*stmt, 1, id);
    bind_bytes(*stmt, 2, author);
    const int rc = sqlite3_step(*stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlite_error("write failed", rc);
    return rc == SQLITE_ROW;
  }

  Result<std::optional<std::int64_t>> address_deleted_until(const Address& address) override {
    auto stmt = conn_.prepare(kAddressDeleted);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_int(*stmt, 1, address.kind);
    bind_bytes(*stmt, 2, address.pubkey);
    bind_text(*stmt, 3, address.d);
    const int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_DONE) return std::optional<std::int64_t>();
    if (rc != SQLITE_ROW) return sqlite_error("write failed", rc);
    return std::optional<std::int64_t>(sqlite3_column_int64(*stmt, 0));
  }

  Status versions(const Address& address, std::vector<StoredRef>& out) override {
    out.clear();
    auto stmt = conn_.prepare(kVersions);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_bytes(*stmt, 1, address.pubkey);
    bind_int(*stmt, 2, address.kind);
    bind_text(*stmt, 3, address.d);
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
      StoredRef ref;
      column_bytes(*stmt, 0, ref.id);
      ref.pubkey = address.pubkey;
      ref.created_at = sqlite3_column_int64(*stmt, 1);
      ref.kind = address.kind;
      ref.seq = static_cast<std::uint64_t>(sqlite3_column_int64(*stmt, 2));
      out.push_back(ref);
    }
    if (rc != SQLITE_DONE) return sqlite_error("write failed", rc);
    return Status::ok();
  }

  Status remove(const EventId& id) override {
    std::int64_t seq = 0;
    std::string json;
    std::string content;
    {
      auto stmt = conn_.prepare(kFindRemoved);
      if (!stmt) return std::move(stmt).error();
      StatementScope scope(*stmt);
      bind_bytes(*stmt, 1, id);
      const int rc = sqlite3_step(*stmt);
      if (rc == SQLITE_DONE) return Status::ok();
      if (rc != SQLITE_ROW) return sqlite_error("write failed", rc);
      seq = sqlite3_column_int64(*stmt, 0);
      json = column_text(*stmt, 1);
      content = column_text(*stmt, 2);
    }
    bytes_delta_ -= static_cast<std::int64_t>(json.size());
    const bool in_index = search_.removed(seq);
    if (Status s = remove_index_rows(conn_, id, seq, std::move(json), content, in_index); !s) {
      return s;
    }
    auto stmt = conn_.prepare(kRemoveEvent);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_int(*stmt, 1, seq);
    return step_done(*stmt);
  }

  Result<std::uint64_t> insert(const EventPtr& event) override {
    if (!last_seq_) {
      Result<std::int64_t> last = read_last_seq(conn_);
      if (!last) return std::move(last).error();
      last_seq_ = *last;
    }
    auto stmt = conn_.prepare(kInsertEvent);
    if (!stmt) return std::move(stmt).error();
    const std::optional<Address> address = address_of(*event);
    const std::int64_t seq = *last_seq_ + 1;
    {
      StatementScope scope(*stmt);
      bind_bytes(*stmt, 1, event->id());
      bind_bytes(*stmt, 2, event->pubkey());
      bind_int(*stmt, 3, event->created_at());
      bind_int(*stmt, 4, event->kind());
      if (address) bind_text(*stmt, 5, address->d);  // unbound parameters are NULL
      if (auto expiration = event->expiration()) bind_int(*stmt, 6, *expiration);
      bind_text(*stmt, 7, event->json());
      bind_int(*stmt, 8, seq);
      const int rc = sqlite3_step(*stmt);
      if (rc != SQLITE_DONE) return sqlite_error("write failed", rc);
    }
    last_seq_ = seq;
    bytes_delta_ += static_cast<std::int64_t>(event->json().size());
    if (Status s = insert_tags(*event, seq); !s) return s;
    search_.stored(seq, event);
    return static_cast<std::uint64_t>(seq);
  }

  // The change to stored_bytes of what this target stored and removed, and the last seq it
  // assigned (nothing if it stored nothing).
  std::int64_t bytes_delta() const { return bytes_delta_; }
  std::optional<std::int64_t> last_seq() const { return last_seq_; }

  Status add_id_tombstone(const EventId& id, const Pubkey& author) override {
    auto stmt = conn_.prepare(kAddIdTombstone);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_bytes(*stmt, 1, id);
    bind_bytes(*stmt, 2, author);
    return step_done(*stmt);
  }

  Status add_address_tombstone(const Address& address, std::int64_t until) override {
    auto stmt = conn_.prepare(kAddAddressTombstone);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_int(*stmt, 1, address.kind);
    bind_bytes(*stmt, 2, address.pubkey);
    bind_text(*stmt, 3, address.d);
    bind_int(*stmt, 4, until);
    return step_done(*stmt);
  }

 private:
  Status insert_tags(const Event& event, std::int64_t seq) {
    auto stmt = conn_.prepare(kInsertTag);
    if (!stmt) return std::move(stmt).error();
    for (const Tag& tag : event.tags()) {
      if (!is_indexed_tag(tag)) continue;
      std::optional<Bytes32> key;  // bound without a copy, so it outlives the scope
      StatementScope scope(*stmt);
      bind_int(*stmt, 1, seq);
      bind_text(*stmt, 2, tag[0]);
      bind_tag_value(*stmt, 3, tag[1], &key);
      bind_int(*stmt, 4, event.created_at());
      bind_bytes(*stmt, 5, event.id());
      if (Status s = step_done(*stmt); !s) return s;
    }
    return Status::ok();
  }

  SqliteConnection& conn_;
  BacklogChange& search_;
  std::int64_t bytes_delta_ = 0;
  // Read at the first insert; the seqs this transaction assigned run up to it.
  std::optional<std::int64_t> last_seq_;
};

// Adds `delta` to stored_bytes and records `last_seq`, the last seq the transaction assigned if
// it stored anything, and `search_seq`, the search index's new mark if it moved: once per
// transaction, as its last statement.
Status update_totals(SqliteConnection& conn, std::int64_t delta,
                     std::optional<std::int64_t> last_seq = std::nullopt,
                     std::optional<std::int64_t> search_seq = std::nullopt) {
  if (delta == 0 && !last_seq && !search_seq) return Status::ok();
  std::string_view sql = kAddStoredBytes;
  if (last_seq) {
    sql = search_seq ? kAddStoredBytesAndSeqs : kAddStoredBytesAndSeq;
  } else if (search_seq) {
    sql = kAddStoredBytesAndSearchSeq;
  }
  auto stmt = conn.prepare(sql);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  bind_int(*stmt, 1, delta);
  if (last_seq) bind_int(*stmt, 2, *last_seq);
  if (search_seq) bind_int(*stmt, 3, *search_seq);
  if (const int rc = sqlite3_step(*stmt); rc != SQLITE_DONE) {
    return sqlite_error("write failed", rc);
  }
  return Status::ok();
}

// Runs `body` between BEGIN IMMEDIATE and COMMIT, rolling back when either fails, so the
// database is exactly as before on any error. A failed rollback is reported with the error:
// the connection may still be inside the transaction, and every later write would fail.
template <typename Body>
Status in_transaction(SqliteConnection& conn, Body&& body) {
  if (Status s = conn.run("BEGIN IMMEDIATE", "cannot begin a write"); !s) return s;
  Status status = body();
  if (status) status = conn.run("COMMIT", "cannot commit");
  if (!status && sqlite3_get_autocommit(conn.handle()) == 0) {
    status = with_cleanup(status, conn.run("ROLLBACK", "cannot roll back"));
  }
  return status;
}

}  // namespace

Status sqlite_write_batch(SqliteConnection& conn, std::span<const EventPtr> events,
                          std::vector<WriteResult>& results, SearchBacklog* backlog) {
  results.clear();
  results.resize(events.size());
  if (events.empty()) return Status::ok();
  BacklogChange search(backlog);
  SqliteWriteTarget target(conn, search);
  Status status = in_transaction(conn, [&] {
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (Status s = apply_event(target, events[i], results[i]); !s) return s;
    }
    std::optional<std::int64_t> mark;
    if (const std::optional<std::int64_t> last = target.last_seq()) {
      auto due = search.index_if_due(conn, *last);
      if (!due) return std::move(due).error();
      mark = *due;
    }
    return update_totals(conn, target.bytes_delta(), target.last_seq(), mark);
  });
  if (!status) {
    for (WriteResult& r : results) set_outcome(r, WriteOutcome::kRejected, status);
    return status;
  }
  search.committed();
  return status;
}

Status sqlite_index_backlog(SqliteConnection& conn, SearchBacklog& backlog) {
  if (backlog.events.empty()) return Status::ok();
  BacklogChange search(&backlog);
  Status status = in_transaction(conn, [&] {
    Result<std::int64_t> last = read_last_seq(conn);
    if (!last) return std::move(last).error();
    auto mark = search.index_if_due(conn, *last, /*now=*/true);
    if (!mark) return std::move(mark).error();
    return update_totals(conn, 0, std::nullopt, *mark);
  });
  if (status) search.committed();
  return status;
}

Result<std::vector<RemovedEvent>> sqlite_purge_expired(SqliteConnection& conn, std::int64_t now,
                                                       SearchBacklog* backlog) {
  std::vector<RemovedEvent> purged;
  BacklogChange search(backlog);
  Status status = in_transaction(conn, [&] {
    purged.clear();
    // The purged events' seq, JSON and content, to remove their tag rows and words once the
    // DELETE is done.
    struct Gone {
      EventId id;
      std::int64_t seq;
      std::string json;
      std::string content;
    };
    std::vector<Gone> gone_rows;
    std::int64_t freed = 0;
    {
      auto stmt = conn.prepare(kPurgeEvents);
      if (!stmt) return std::move(stmt).error();
      StatementScope scope(*stmt);
      bind_int(*stmt, 1, now);
      int rc;
      while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
        RemovedEvent gone;
        column_bytes(*stmt, 0, gone.id);
        gone.kind = static_cast<std::uint16_t>(sqlite3_column_int(*stmt, 1));
        gone.seq = static_cast<std::uint64_t>(sqlite3_column_int64(*stmt, 2));
        gone.reason = RemovalReason::kExpired;
        column_bytes(*stmt, 3, gone.pubkey);
        purged.push_back(gone);
        Gone& row = gone_rows.emplace_back(
            Gone{gone.id, sqlite3_column_int64(*stmt, 2), std::string(column_text(*stmt, 5)), {}});
        freed += static_cast<std::int64_t>(row.json.size());
        row.content = column_text(*stmt, 4);
      }
      if (rc != SQLITE_DONE) return sqlite_error("purge failed", rc);
    }
    for (Gone& row : gone_rows) {
      const bool in_index = search.removed(row.seq);
      if (Status s =
              remove_index_rows(conn, row.id, row.seq, std::move(row.json), row.content, in_index);
          !s) {
        return s;
      }
    }
    return update_totals(conn, -freed);
  });
  if (!status) return status;
  search.committed();
  // RETURNING yields rows in no particular order.
  std::sort(purged.begin(), purged.end(),
            [](const RemovedEvent& a, const RemovedEvent& b) { return a.seq < b.seq; });
  return purged;
}

Result<std::vector<RemovedEvent>> sqlite_erase(SqliteConnection& conn, std::span<const EventId> ids,
                                               SearchBacklog* backlog) {
  BacklogChange search(backlog);
  SqliteWriteTarget target(conn, search);
  std::vector<RemovedEvent> erased;
  Status status = in_transaction(conn, [&] {
    erased.clear();
    if (Status s = erase_events(target, ids, erased); !s) return s;
    return update_totals(conn, target.bytes_delta());
  });
  if (!status) return status;
  search.committed();
  return erased;
}

Result<std::uint64_t> sqlite_size_bytes(SqliteConnection& conn) {
  auto stmt = conn.prepare(kStoredBytes);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  const int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW) return sqlite_error("reading the stored bytes failed", rc);
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, sqlite3_column_int64(*stmt, 0)));
}

}  // namespace relaycore::storage
