#include "postgres/pg_write.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "postgres/pg_prefetch.hpp"
#include "postgres/pg_schema.hpp"
#include "relaycore/storage_rules.hpp"
#include "storage/storage_util.hpp"
#include "util/cleanup_status.hpp"

namespace relaycore::postgres {
namespace {

constexpr std::string_view kLock = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k";
constexpr std::string_view kFind = "SELECT pubkey, created_at, kind, seq FROM events WHERE id = $1";
constexpr std::string_view kIdDeleted = "SELECT 1 FROM deleted_ids WHERE id = $1 AND pubkey = $2";
constexpr std::string_view kAddressDeleted =
    "SELECT up_to FROM deleted_addresses WHERE kind = $1 AND pubkey = $2 AND d = $3";
constexpr std::string_view kVersions =
    "SELECT id, created_at, seq FROM events WHERE pubkey = $1 AND kind = $2 AND d_tag = $3";
// The event and its indexed tags in one round trip.
constexpr std::string_view kInsert =
    "WITH e AS (INSERT INTO events (id, pubkey, created_at, kind, d_tag, expiration, json, "
    "search) VALUES ($1, $2, $3, $4, $5, $6, $7, to_tsvector('simple', $10)) "
    "RETURNING seq, created_at, id), "
    "t AS (INSERT INTO tags (seq, name, value, created_at, id) "
    "SELECT e.seq, x.name, x.value, e.created_at, e.id FROM e, unnest($8::bytea[], $9::bytea[]) "
    "AS x(name, value) ON CONFLICT DO NOTHING) "
    "SELECT seq FROM e";
constexpr std::string_view kAddIdTombstone =
    "INSERT INTO deleted_ids (id, pubkey) VALUES ($1, $2) ON CONFLICT DO NOTHING";
constexpr std::string_view kAddAddressTombstone =
    "INSERT INTO deleted_addresses (kind, pubkey, d, up_to) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (kind, pubkey, d) DO UPDATE "
    "SET up_to = GREATEST(deleted_addresses.up_to, EXCLUDED.up_to)";

// Removal of one event by id: a replaced or NIP-09 deleted version.
const std::string& remove_by_id_sql() {
  static const std::string sql = removal_sql("id = $1");
  return sql;
}

// Removal of every event of a list of ids, in one statement: an operator's erase, or a
// retention batch.
const std::string& remove_by_ids_sql() {
  static const std::string sql = removal_sql("id = ANY($1::bytea[])");
  return sql;
}

const std::string& purge_sql() {
  static const std::string sql = removal_sql("expiration <= $1");
  return sql;
}

// A batch that lost a race with another node's (a deadlock the server broke, a serialization
// failure, or an insert of the same row) is tried again from the start, this many times.
constexpr int kAttempts = 3;

bool retryable(std::string_view sqlstate) {
  return sqlstate == "40P01" || sqlstate == "40001" || sqlstate == "23505";
}

// FNV-1a, 64 bits: every node must map a slot to the same key, so no std::hash.
class KeyHash {
 public:
  explicit KeyHash(char space) { add(&space, 1); }
  KeyHash& add(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) hash_ = (hash_ ^ p[i]) * 0x100000001b3ULL;
    return *this;
  }
  std::int64_t value() const { return static_cast<std::int64_t>(hash_); }

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

std::int64_t id_key(const EventId& id) { return KeyHash('i').add(id.data(), id.size()).value(); }

std::int64_t address_key(const Address& a) {
  const unsigned char kind[2] = {static_cast<unsigned char>(a.kind >> 8),
                                 static_cast<unsigned char>(a.kind & 0xff)};
  return KeyHash('a')
      .add(kind, 2)
      .add(a.pubkey.data(), a.pubkey.size())
      .add(a.d.data(), a.d.size())
      .value();
}

Status expect_rows(const Result<PgResult>& res) {
  if (!res) return res.error();
  return Status::ok();
}

Status corrupt() { return Status::error("storage: PostgreSQL returned a malformed row"); }

// The WriteTarget primitives as SQL on the writer connection, inside its transaction.
class PgWriteTarget final : public WriteTarget {
 public:
  explicit PgWriteTarget(PgConnection& conn) : conn_(conn) {}

  Result<std::optional<StoredRef>> find(const EventId& id) override {
    PgParams p;
    p.add_bytes(id);
    auto res = conn_.exec(kFind, p);
    if (!res) return std::move(res).error();
    const PGresult* r = res->get();
    if (PQntuples(r) == 0) return std::optional<StoredRef>();
    StoredRef ref;
    ref.id = id;
    if (!get_bytes32(r, 0, 0, ref.pubkey)) return corrupt();
    ref.created_at = get_int(r, 0, 1);
    ref.kind = static_cast<std::uint16_t>(get_int(r, 0, 2));
    ref.seq = static_cast<std::uint64_t>(get_int(r, 0, 3));
    return std::optional<StoredRef>(ref);
  }

  Result<bool> id_deleted(const EventId& id, const Pubkey& author) override {
    PgParams p;
    p.add_bytes(id).add_bytes(author);
    auto res = conn_.exec(kIdDeleted, p);
    if (!res) return std::move(res).error();
    return PQntuples(res->get()) > 0;
  }

  Result<std::optional<std::int64_t>> address_deleted_until(const Address& address) override {
    PgParams p;
    p.add_int(address.kind).add_bytes(address.pubkey).add_bytes(address.d);
    auto res = conn_.exec(kAddressDeleted, p);
    if (!res) return std::move(res).error();
    if (PQntuples(res->get()) == 0) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(get_int(res->get(), 0, 0));
  }

  Status versions(const Address& address, std::vector<StoredRef>& out) override {
    out.clear();
    PgParams p;
    p.add_bytes(address.pubkey).add_int(address.kind).add_bytes(address.d);
    auto res = conn_.exec(kVersions, p);
    if (!res) return std::move(res).error();
    const PGresult* r = res->get();
    for (int row = 0; row < PQntuples(r); ++row) {
      StoredRef ref;
      if (!get_bytes32(r, row, 0, ref.id)) return corrupt();
      ref.pubkey = address.pubkey;
      ref.created_at = get_int(r, row, 1);
      ref.kind = address.kind;
      ref.seq = static_cast<std::uint64_t>(get_int(r, row, 2));
      out.push_back(ref);
    }
    return Status::ok();
  }

  Status remove(const EventId& id) override {
    PgParams p;
    p.add_bytes(id);
    return expect_rows(conn_.exec(remove_by_id_sql(), p));
  }

  Result<std::uint64_t> insert(const EventPtr& event) override {
    const std::optional<Address> address = address_of(*event);
    std::vector<std::string_view> names;
    std::vector<std::string_view> values;
    for (const Tag& tag : event->tags()) {
      if (!storage::is_indexed_tag(tag)) continue;
      names.push_back(tag[0]);
      values.push_back(tag[1]);
    }
    PgParams p;
    p.add_bytes(event->id()).add_bytes(event->pubkey()).add_int(event->created_at());
    p.add_int(event->kind());
    if (address) {
      p.add_bytes(address->d);
    } else {
      p.add_null();
    }
    if (auto expiration = event->expiration()) {
      p.add_int(*expiration);
    } else {
      p.add_null();
    }
    p.add_text(event->json()).add_bytes_array(names).add_bytes_array(values);
    const std::string words = search_document(event->content());  // p points into it
    p.add_text(words);
    auto res = conn_.exec(kInsert, p);
    if (!res) return std::move(res).error();
    if (PQntuples(res->get()) != 1) return Status::error("storage: PostgreSQL insert failed");
    return static_cast<std::uint64_t>(get_int(res->get(), 0, 0));
  }

  Status add_id_tombstone(const EventId& id, const Pubkey& author) override {
    PgParams p;
    p.add_bytes(id).add_bytes(author);
    return expect_rows(conn_.exec(kAddIdTombstone, p));
  }

  Status add_address_tombstone(const Address& address, std::int64_t until) override {
    PgParams p;
    p.add_int(address.kind).add_bytes(address.pubkey).add_bytes(address.d).add_int(until);
    return expect_rows(conn_.exec(kAddAddressTombstone, p));
  }

 private:
  PgConnection& conn_;
};

// Appends the rows of a DELETE ... RETURNING id, kind, seq, pubkey to `out`.
Status append_removed(const PgResult& res, RemovalReason reason, std::vector<RemovedEvent>& out) {
  const PGresult* r = res.get();
  for (int row = 0; row < PQntuples(r); ++row) {
    RemovedEvent gone;
    gone.reason = reason;
    gone.kind = static_cast<std::uint16_t>(get_int(r, row, 1));
    gone.seq = static_cast<std::uint64_t>(get_int(r, row, 2));
    if (!get_bytes32(r, row, 0, gone.id) || !get_bytes32(r, row, 3, gone.pubkey)) return corrupt();
    out.push_back(gone);
  }
  return Status::ok();
}

// Runs `body` in a transaction, rolling back when it or COMMIT fails, and starting over when
// the failure was a conflict with another writer.
template <typename Body>
Status in_transaction(PgConnection& conn, Body&& body) {
  Status status;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    status = conn.begin();
    if (!status) return status;
    status = body();
    if (status) status = conn.commit();
    if (status) return status;
    if (Status rolled_back = conn.rollback(); !rolled_back) {
      return with_cleanup(status, rolled_back);
    }
    if (!retryable(conn.last_sqlstate())) return status;
  }
  return status;
}

}  // namespace

std::string removal_sql(std::string_view where) {
  std::string sql = "WITH e AS (DELETE FROM events WHERE ";
  sql.append(where);
  sql.append(
      " RETURNING id, kind, seq, pubkey, created_at, json), "
      "k AS (SELECT e.id, e.kind, e.seq, e.pubkey, e.created_at, x.names, x.tag_values "
      "FROM e, relaycore_tag_keys(e.json, e.id) AS x), "
      "t AS (DELETE FROM tags USING k, unnest(k.names, k.tag_values) AS x(name, value) "
      "WHERE tags.name = x.name AND tags.value = x.value AND tags.created_at = k.created_at "
      "AND tags.id = k.id), "
      "u AS (DELETE FROM tags WHERE EXISTS (SELECT FROM k WHERE names IS NULL) "
      "AND seq IN (SELECT seq FROM k WHERE names IS NULL)) "
      "SELECT id, kind, seq, pubkey FROM k");
  return sql;
}

std::vector<std::int64_t> lock_keys(const BatchKeys& batch) {
  std::vector<std::int64_t> keys;
  for (const EventId& id : batch.ids) keys.push_back(id_key(id));
  for (const Address& address : batch.addresses) keys.push_back(address_key(address));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

Status pg_write_batch(PgConnection& conn, std::span<const EventPtr> events,
                      std::vector<WriteResult>& results) {
  results.clear();
  results.resize(events.size());
  if (events.empty()) return Status::ok();
  const BatchKeys batch = batch_keys(events);
  const std::vector<std::int64_t> keys = lock_keys(batch);
  PgWriteTarget sql(conn);
  Status status = in_transaction(conn, [&] {
    PgParams p;
    p.add_int_array(keys);
    if (Status s = expect_rows(conn.exec(kLock, p)); !s) return s;
    // A fresh snapshot per attempt: a retried batch must not see the rolled-back one's rows.
    PrefetchedTarget target(sql);
    if (Status s = target.prefetch(conn, batch); !s) return s;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (Status s = apply_event(target, events[i], results[i]); !s) return s;
    }
    return Status::ok();
  });
  if (!status) {
    for (WriteResult& r : results) storage::set_outcome(r, WriteOutcome::kRejected, status);
  }
  return status;
}

Result<std::vector<RemovedEvent>> pg_purge_expired(PgConnection& conn, std::int64_t now) {
  PgParams p;
  p.add_int(now);
  auto res = conn.exec(purge_sql(), p);
  if (!res) return std::move(res).error();
  std::vector<RemovedEvent> purged;
  if (Status s = append_removed(*res, RemovalReason::kExpired, purged); !s) return s;
  // RETURNING yields rows in no particular order.
  std::sort(purged.begin(), purged.end(),
            [](const RemovedEvent& a, const RemovedEvent& b) { return a.seq < b.seq; });
  return purged;
}

Result<std::vector<RemovedEvent>> pg_erase(PgConnection& conn, std::span<const EventId> ids) {
  std::vector<RemovedEvent> erased;
  if (ids.empty()) return erased;
  // One statement, so atomic on its own.
  PgParams p;
  p.add_bytes_array(ids);
  auto res = conn.exec(remove_by_ids_sql(), p);
  if (!res) return std::move(res).error();
  if (Status s = append_removed(*res, RemovalReason::kErased, erased); !s) return s;
  // RETURNING yields rows in no particular order; Storage::erase reports them in the order given.
  std::map<EventId, std::size_t> position;
  for (std::size_t i = 0; i < ids.size(); ++i) position.emplace(ids[i], i);
  std::sort(erased.begin(), erased.end(), [&](const RemovedEvent& a, const RemovedEvent& b) {
    return position.at(a.id) < position.at(b.id);
  });
  return erased;
}

}  // namespace relaycore::postgres
