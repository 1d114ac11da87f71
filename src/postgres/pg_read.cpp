#include "postgres/pg_read.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "storage/filter_sql.hpp"
#include "storage/storage_keys.hpp"
#include "storage/storage_util.hpp"

namespace relaycore::postgres {
namespace {

using storage::SqlQuery;

constexpr std::string_view kContains = "SELECT 1 FROM events WHERE id = $1";
constexpr std::string_view kMaxSeq =
    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM relaycore_event_seq";
// The stored events' JSON, kept by triggers in its slots (pg_schema.cpp, version 4).
constexpr std::string_view kSizeBytes =
    "SELECT coalesce(sum(bytes), 0)::bigint FROM relaycore_stored_bytes";
constexpr std::string_view kExpired =
    "SELECT id FROM events WHERE expiration IS NOT NULL AND expiration <= $1";
constexpr std::string_view kScanSince =
    "SELECT seq, id, json FROM events WHERE seq > $1 ORDER BY seq";

// The protocol numbers parameters with 16 bits.
constexpr std::size_t kMaxParams = 65535;

// "$n" placeholders, plain columns (PostgreSQL's planner needs no hints) and the events.search
// tsvector for NIP-50.
const storage::SqlDialect& dialect() noexcept {
  static const storage::SqlDialect d{
      .numbered_params = true,
      .seq_column = "seq",
      .expiration_column = "expiration",
      .search = storage::SqlSearch::kTsvector,
  };
  return d;
}

PgParams params_of(const SqlQuery& q) {
  PgParams p;
  for (const storage::SqlParam& param : q.params) p.add(param);
  return p;
}

Status too_many_values() { return Status::error("storage: filter has too many values"); }

// Streams rows of kEventColumns to `visit`, loading each, and stopping after `limit` visited
// rows. A row that cannot be served (altered outside relaycore) is skipped and logged.
Status visit_rows(PgConnection& conn, const SqlQuery& q, std::uint64_t limit, const Log* log,
                  const std::function<bool(const StoredEvent&)>& visit) {
  std::uint64_t served = 0;
  return conn.for_each_row(q.sql, params_of(q), [&](const PGresult* r) {
    StoredEvent stored;
    stored.seq = static_cast<std::uint64_t>(get_int(r, 0, 0));
    EventId id;
    Result<EventPtr> event = Status::error("storage: a stored event id is unreadable");
    if (get_bytes32(r, 0, 1, id)) {
      event = storage::load_stored_row(std::string(get_bytes(r, 0, 2)), id);
    }
    if (!event) {
      if (log) {
        log->failure(LogLevel::kError,
                     "storage: skipped the event stored at seq " + std::to_string(stored.seq),
                     event.error().message());
      }
      return true;
    }
    stored.event = std::move(event).value();
    ++served;
    return visit(stored) && served < limit;
  });
}

// Counting in parts: the union's seqs collected filter by filter, for unions too large to bind
// in one statement.
Result<std::uint64_t> count_in_parts(PgConnection& conn, const std::vector<Filter>& filters,
                                     const QueryRequest& request) {
  std::unordered_set<std::int64_t> seqs;
  for (const Filter& f : filters) {
    SqlQuery q = storage::build_seq_select(dialect(), f, request);
    if (q.params.size() > kMaxParams) return too_many_values();
    Status s = conn.for_each_row(q.sql, params_of(q), [&](const PGresult* r) {
      seqs.insert(get_int(r, 0, 0));
      return true;
    });
    if (!s) return s;
  }
  return static_cast<std::uint64_t>(seqs.size());
}

}  // namespace

SqlQuery pg_query_sql(const Filter& filter, const QueryRequest& request) {
  return storage::build_query(dialect(), filter, request,
                              storage::effective_limit(filter, request));
}

Status pg_query(PgConnection& conn, const Filter& filter, const QueryRequest& request,
                const std::function<bool(const StoredEvent&)>& visit, const Log* log) {
  const std::uint32_t limit = storage::effective_limit(filter, request);
  if (limit == 0) return Status::ok();
  SqlQuery q = pg_query_sql(filter, request);
  if (q.params.size() > kMaxParams) return too_many_values();
  return visit_rows(conn, q, limit, log, visit);
}

Status pg_scan_keys(PgConnection& conn, const Filter& filter, const QueryRequest& request,
                    const std::function<bool(const EventKey&)>& visit) {
  if (filter.search) return Status::error("storage: scan_keys does not take a search filter");
  const std::uint32_t limit = storage::effective_limit(filter, request);
  if (limit == 0) return Status::ok();
  // Expired events not purged yet are dropped here, so that the key query needs no table
  // lookup for the expiration; it reads that many more rows to still give `limit`.
  std::vector<EventId> expired;
  PgParams now;
  now.add_int(request.now);
  Status s = conn.for_each_row(kExpired, now, [&](const PGresult* r) {
    EventId id{};
    if (get_bytes32(r, 0, 0, id)) expired.push_back(id);
    return true;
  });
  if (!s) return s;
  std::sort(expired.begin(), expired.end());
  const std::uint64_t wanted = std::uint64_t{limit} + expired.size();
  SqlQuery q = storage::build_key_select(
      dialect(), filter, request,
      static_cast<std::uint32_t>(std::min<std::uint64_t>(wanted, UINT32_MAX)));
  if (q.params.size() > kMaxParams) return too_many_values();
  std::vector<EventKey> keys;
  Status inner;
  s = conn.for_each_row(q.sql, params_of(q), [&](const PGresult* r) {
    EventKey key;
    key.created_at = get_int(r, 0, 0);
    if (!get_bytes32(r, 0, 1, key.id)) {
      inner = Status::error("storage: a stored event id is unreadable");
      return false;
    }
    if (!std::binary_search(expired.begin(), expired.end(), key.id)) keys.push_back(key);
    return keys.size() < limit;
  });
  if (!inner) return inner;
  if (!s) return s;
  storage::newest_first_to_ascending(keys);
  storage::visit_keys(keys, visit);
  return Status::ok();
}

Result<std::uint64_t> pg_count(PgConnection& conn, const std::vector<Filter>& filters,
                               const QueryRequest& request) {
  if (filters.empty()) return std::uint64_t{0};
  SqlQuery q = storage::build_count(dialect(), filters, request);
  if (q.params.size() > kMaxParams) return count_in_parts(conn, filters, request);
  auto res = conn.exec(q.sql, params_of(q), /*prepare=*/false);
  if (!res) return std::move(res).error();
  if (PQntuples(res->get()) != 1) return Status::error("storage: PostgreSQL count failed");
  return static_cast<std::uint64_t>(get_int(res->get(), 0, 0));
}

Result<bool> pg_contains(PgConnection& conn, const EventId& id) {
  PgParams p;
  p.add_bytes(id);
  auto res = conn.exec(kContains, p);
  if (!res) return std::move(res).error();
  return PQntuples(res->get()) > 0;
}

Result<std::uint64_t> pg_max_seq(PgConnection& conn) {
  auto res = conn.exec(kMaxSeq);
  if (!res) return std::move(res).error();
  if (PQntuples(res->get()) != 1) return Status::error("storage: PostgreSQL max_seq failed");
  return static_cast<std::uint64_t>(get_int(res->get(), 0, 0));
}

Result<std::uint64_t> pg_size_bytes(PgConnection& conn) {
  auto res = conn.exec(kSizeBytes);
  if (!res) return std::move(res).error();
  if (PQntuples(res->get()) != 1) return Status::error("storage: PostgreSQL size_bytes failed");
  return static_cast<std::uint64_t>(get_int(res->get(), 0, 0));
}

Status pg_scan_since(PgConnection& conn, std::uint64_t after_seq,
                     const std::function<bool(const StoredEvent&)>& visit, const Log* log) {
  SqlQuery q;
  q.sql = std::string(kScanSince);
  q.params.emplace_back(storage::clamp_seq(after_seq));
  return visit_rows(conn, q, UINT64_MAX, log, visit);
}

}  // namespace relaycore::postgres
