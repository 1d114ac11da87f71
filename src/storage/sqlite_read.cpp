#include "storage/sqlite_read.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <queue>
#include <unordered_set>
#include <utility>

#include "protocol/search_text.hpp"
#include "storage/sqlite_filter_sql.hpp"
#include "storage/sqlite_search.hpp"
#include "storage/storage_keys.hpp"
#include "storage/storage_util.hpp"

namespace relaycore::storage {
namespace {

constexpr std::string_view kContains = "SELECT 1 FROM events WHERE id = ?1";
constexpr std::string_view kMaxSeq = "SELECT last_seq FROM stored_bytes";
constexpr std::string_view kExpired =
    "SELECT id FROM events WHERE expiration IS NOT NULL AND expiration <= ?1";
constexpr std::string_view kEventAt = "SELECT seq, id, json FROM events WHERE seq = ?1";

// How a read treats its rows: the storage's event cache (none for reads that should not fill it)
// with its generation recorded before the read's first statement, and where a row that cannot
// be served is reported.
struct RowCache {
  EventCache* cache = nullptr;
  std::uint64_t generation = 0;
  const Log* log = nullptr;

  explicit RowCache(EventCache* c = nullptr, const Log* l = nullptr)
      : cache(c), generation(c ? c->generation() : 0), log(l) {}
};

// The current row of a statement returning kEventColumns, loaded: the cached event for its id
// when there is one, else its JSON, offered to the cache. An error when the row cannot be
// served as the event its id names.
Result<StoredEvent> load_row(sqlite3_stmt* stmt, const RowCache& rows) {
  StoredEvent stored;
  stored.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
  EventId id;
  if (!column_bytes(stmt, 1, id)) return Status::error("storage: a stored event id is unreadable");
  if (rows.cache) {
    if (std::optional<StoredEvent> hit = rows.cache->find(id)) {
      stored.event = std::move(hit->event);
      return stored;
    }
  }
  auto event = load_stored_row(std::string(column_text(stmt, 2)), id);
  if (!event) return std::move(event).error();
  stored.event = std::move(event).value();
  if (rows.cache) rows.cache->insert_read(stored, rows.generation);
  return stored;
}

// The next row of a statement returning kEventColumns as a stored event; nothing when the rows
// are done. A row that cannot be served (altered outside relaycore) is skipped and logged: the
// read goes on without it rather than failing every read that reaches it.
Result<std::optional<StoredEvent>> next_row(sqlite3_stmt* stmt, const RowCache& rows) {
  while (true) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return std::optional<StoredEvent>();
    if (rc != SQLITE_ROW) return sqlite_error("read failed", rc);
    Result<StoredEvent> row = load_row(stmt, rows);
    if (row) return std::optional<StoredEvent>(std::move(row).value());
    if (rows.log) {
      rows.log->failure(LogLevel::kError,
                        "storage: skipped the event stored at seq " +
                            std::to_string(sqlite3_column_int64(stmt, 0)),
                        row.error().message());
    }
  }
}

// Steps a statement returning kEventColumns and hands each loaded event to `visit`.
Status visit_rows(sqlite3_stmt* stmt, const RowCache& rows,
                  const std::function<bool(const StoredEvent&)>& visit) {
  while (true) {
    auto row = next_row(stmt, rows);
    if (!row) return std::move(row).error();
    if (!*row || !visit(**row)) return Status::ok();
  }
}

bool too_many_params(SqliteConnection& conn, std::size_t n) {
  return n >
         static_cast<std::size_t>(sqlite3_limit(conn.handle(), SQLITE_LIMIT_VARIABLE_NUMBER, -1));
}

// Prepares and binds a dynamic query; the caller wraps the statement in a StatementScope.
Result<sqlite3_stmt*> prepare_query(SqliteConnection& conn, const SqlQuery& q) {
  if (too_many_params(conn, q.params.size())) {
    return Status::error("storage: filter has too many values");
  }
  auto stmt = conn.prepare_dynamic(q.sql);
  if (!stmt) return stmt;
  if (int rc = bind_params(*stmt, q.params); rc != SQLITE_OK) {
    sqlite3_clear_bindings(*stmt);
    return sqlite_error("read failed", rc);
  }
  return stmt;
}

// True when `a` comes after `b` in NIP-01 order (created_at descending, then id ascending).
bool after(const StoredEvent& a, const StoredEvent& b) noexcept {
  if (a.event->created_at() != b.event->created_at()) {
    return a.event->created_at() < b.event->created_at();
  }
  return a.event->id() > b.event->id();
}

// The next row of one ordered source of a merge; nothing once that source is done.
using NextRow = std::function<Result<std::optional<StoredEvent>>(std::size_t source)>;

// Hands on the rows of `sources` ordered sources in NIP-01 order until `limit` have been: each
// source's next row waits in a heap, and the first in order goes next. A row whose key equals
// the one served last is the same event reached through a second source (an event carrying two
// of a tag list's values) and is skipped.
Status merge_sources(std::size_t sources, const NextRow& next, std::uint32_t limit,
                     const std::function<bool(const StoredEvent&)>& visit) {
  struct Head {
    StoredEvent stored;
    std::size_t source;
  };
  auto later = [](const Head& a, const Head& b) { return after(a.stored, b.stored); };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  auto advance = [&](std::size_t source) -> Status {
    auto row = next(source);
    if (!row) return std::move(row).error();
    if (*row) heads.push(Head{std::move(**row), source});
    return Status::ok();
  };
  for (std::size_t i = 0; i < sources; ++i) {
    if (Status s = advance(i); !s) return s;
  }
  std::optional<EventKey> last;
  for (std::uint32_t served = 0; served < limit && !heads.empty();) {
    Head head = heads.top();
    heads.pop();
    if (Status s = advance(head.source); !s) return s;
    const EventKey key = event_key(*head.stored.event);
    if (last && *last == key) continue;
    last = key;
    ++served;
    if (!visit(head.stored)) return Status::ok();
  }
  return Status::ok();
}

// Serves a filter by merging the ordered scans merge_scans() split it into, each an open
// statement of its own (at most kMaxMergeScans). The scans are disjoint (one author or kind
// each), so no event comes twice.
Status merge_query(SqliteConnection& conn, const std::vector<Filter>& scans,
                   const QueryRequest& request, std::uint32_t limit, const RowCache& rows,
                   const std::function<bool(const StoredEvent&)>& visit) {
  std::vector<SqlQuery> queries;
  queries.reserve(scans.size());
  for (const Filter& scan : scans) queries.push_back(build_select(scan, request, limit));
  // One-value shapes all: the SQL is the same, only the bound values differ.
  auto stmts = conn.prepare_set(queries.front().sql, queries.size());
  if (!stmts) return std::move(stmts).error();
  std::deque<StatementScope> scopes;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    scopes.emplace_back((*stmts)[i]);
    if (int rc = bind_params((*stmts)[i], queries[i].params); rc != SQLITE_OK) {
      return sqlite_error("read failed", rc);
    }
  }
  return merge_sources(
      scans.size(), [&](std::size_t scan) { return next_row((*stmts)[scan], rows); }, limit, visit);
}

// One value's scan in a tag-list merge, read in batches that each resume after the row read
// last and double in size, so a scan the merge keeps drawing from costs few statements and a
// scan it never reaches past its first row costs one row.
struct TagScan {
  std::string_view value;
  std::deque<StoredEvent> rows;
  std::optional<EventKey> last;
  std::uint32_t batch = 1;
  bool done = false;
};

// Reads a tag scan's next batch through the statement all scans share.
Status read_batch(SqliteConnection& conn, const Filter& filter, const TagCondition& driver,
                  const QueryRequest& request, std::uint32_t limit, const RowCache& rows,
                  TagScan& scan) {
  QueryRequest from = request;
  if (scan.last) from.after = scan.last;
  const SqlQuery q = build_tag_scan(filter, driver, scan.value, from, scan.batch);
  auto stmt = prepare_query(conn, q);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  std::uint32_t read = 0;
  while (true) {
    auto row = next_row(*stmt, rows);
    if (!row) return std::move(row).error();
    if (!*row) break;
    scan.last = event_key(*(*row)->event);
    scan.rows.push_back(std::move(**row));
    ++read;
  }
  scan.done = read < scan.batch;
  scan.batch = std::min(limit, scan.batch * 2);
  return Status::ok();
}

// Serves a filter whose tag condition `driver` lists several values by merging one scan of the
// tags index per value (tag_merge_condition). Each batch is a statement run to its LIMIT and
// reset, so a list of 1,000 values costs one prepared statement, about 1,000 index seeks and
// the rows served, and the reader can stop between any two rows.
Status tag_merge_query(SqliteConnection& conn, const Filter& filter, const TagCondition& driver,
                       const QueryRequest& request, std::uint32_t limit, const RowCache& rows,
                       const std::function<bool(const StoredEvent&)>& visit) {
  const std::size_t n = driver.values.size();
  const auto first = static_cast<std::uint32_t>(std::min<std::size_t>(limit, limit / n + 1));
  std::vector<TagScan> scans(n);
  for (std::size_t i = 0; i < n; ++i) {
    scans[i].value = driver.values[i];
    scans[i].batch = first;
  }
  auto next = [&](std::size_t i) -> Result<std::optional<StoredEvent>> {
    TagScan& scan = scans[i];
    if (scan.rows.empty() && !scan.done) {
      if (Status s = read_batch(conn, filter, driver, request, limit, rows, scan); !s) return s;
    }
    if (scan.rows.empty()) return std::optional<StoredEvent>();
    std::optional<StoredEvent> row(std::move(scan.rows.front()));
    scan.rows.pop_front();
    return row;
  };
  return merge_sources(n, next, limit, visit);
}

// Serves a filter listing ids: it matches at most one row per id, so the rows are read in any
// order and put in NIP-01 order here. Ordered by SQLite, each row would first be copied with its
// JSON into a temporary B-tree and sorted there.
Status ids_query(SqliteConnection& conn, const Filter& filter, const QueryRequest& request,
                 std::uint32_t limit, const RowCache& rows,
                 const std::function<bool(const StoredEvent&)>& visit) {
  const SqlQuery q = build_seq_select(sqlite_dialect(), filter, request, /*with_json=*/true);
  auto stmt = prepare_query(conn, q);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  std::vector<StoredEvent> found;
  found.reserve(filter.ids->size());
  while (true) {
    auto row = next_row(*stmt, rows);
    if (!row) return std::move(row).error();
    if (!*row) break;
    found.push_back(std::move(**row));
  }
  std::sort(found.begin(), found.end(), [](const StoredEvent& a, const StoredEvent& b) {
    return event_key(*a.event) < event_key(*b.event);
  });
  for (std::size_t i = 0; i < found.size() && i < limit; ++i) {
    if (!visit(found[i])) break;
  }
  return Status::ok();
}

// Counting in parts: the union's seqs collected filter by filter, for unions too large to bind
// in one statement.
Result<std::uint64_t> count_in_parts(SqliteConnection& conn, const std::vector<Filter>& filters,
                                     const QueryRequest& request) {
  std::unordered_set<std::int64_t> seqs;
  for (const Filter& f : filters) {
    const SqlQuery q = build_seq_select(f, request);  // the statement binds into it
    auto stmt = prepare_query(conn, q);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) seqs.insert(sqlite3_column_int64(*stmt, 0));
    if (rc != SQLITE_DONE) return sqlite_error("read failed", rc);
  }
  return static_cast<std::uint64_t>(seqs.size());
}

// Serves a search: its newest matches (build_select), ranked (rank_search), then the JSON of
// the first `limit`. A match removed since it was ranked is left out.
Status search_query(SqliteConnection& conn, const Filter& filter, const QueryRequest& request,
                    std::uint32_t limit, const RowCache& rows,
                    const std::function<bool(const StoredEvent&)>& visit) {
  const std::vector<std::string> words = search::query_words(*filter.search);
  if (words.empty()) return Status::ok();
  std::vector<SearchCandidate> candidates;
  {
    const SqlQuery q = build_select(filter, request, limit);  // the statement binds into it
    auto stmt = prepare_query(conn, q);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
      SearchCandidate& c = candidates.emplace_back();
      c.seq = sqlite3_column_int64(*stmt, 0);
      c.created_at = sqlite3_column_int64(*stmt, 1);
      column_bytes(*stmt, 2, c.id);
      c.counts = search::count_words(words, column_text(*stmt, 3));
    }
    if (rc != SQLITE_DONE) return sqlite_error("read failed", rc);
  }
  // The index's newest matches, then those of the events not yet in it: only the newest
  // max_ranked of all are ranked, as when every event is in the index.
  const std::size_t most = sqlite_dialect().max_ranked;
  if (candidates.size() > most) {
    std::sort(candidates.begin(), candidates.end(),
              [](const SearchCandidate& a, const SearchCandidate& b) { return a.seq > b.seq; });
    candidates.resize(most);
  }
  if (Status s = rank_search(conn, words, candidates); !s) return s;
  auto stmt = conn.prepare(kEventAt);
  if (!stmt) return std::move(stmt).error();
  for (std::size_t i = 0; i < candidates.size() && i < limit; ++i) {
    StatementScope scope(*stmt);
    bind_int(*stmt, 1, candidates[i].seq);
    auto row = next_row(*stmt, rows);
    if (!row) return std::move(row).error();
    if (*row && !visit(**row)) break;
  }
  return Status::ok();
}

}  // namespace

Status sqlite_query(SqliteConnection& conn, const Filter& filter, const QueryRequest& request,
                    const std::function<bool(const StoredEvent&)>& visit, EventCache* cache,
                    const Log* log) {
  const std::uint32_t limit = effective_limit(filter, request);
  if (limit == 0) return Status::ok();
  // Recorded before any statement takes its snapshot.
  const RowCache rows(cache, log);
  if (filter.search) return search_query(conn, filter, request, limit, rows, visit);
  if (filter.ids) return ids_query(conn, filter, request, limit, rows, visit);
  if (std::vector<Filter> scans = merge_scans(filter); !scans.empty()) {
    return merge_query(conn, scans, request, limit, rows, visit);
  }
  if (const TagCondition* driver = tag_merge_condition(filter)) {
    return tag_merge_query(conn, filter, *driver, request, limit, rows, visit);
  }
  const SqlQuery q = build_select(filter, request, limit);  // the statement binds into it
  auto stmt = prepare_query(conn, q);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  return visit_rows(*stmt, rows, visit);
}

Status sqlite_scan_keys(SqliteConnection& conn, const Filter& filter, const QueryRequest& request,
                        const std::function<bool(const EventKey&)>& visit) {
  if (filter.search) return Status::error("storage: scan_keys does not take a search filter");
  const std::uint32_t limit = effective_limit(filter, request);
  if (limit == 0) return Status::ok();
  // Events past their expiration and not purged yet: few, found by their partial index. The
  // key query reads that many more rows, so that dropping them leaves `limit`.
  std::vector<EventId> expired;
  {
    auto stmt = conn.prepare(kExpired);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    bind_int(*stmt, 1, request.now);
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
      EventId id{};
      if (sqlite3_column_bytes(*stmt, 0) == static_cast<int>(id.size())) {
        std::memcpy(id.data(), sqlite3_column_blob(*stmt, 0), id.size());
        expired.push_back(id);
      }
    }
    if (rc != SQLITE_DONE) return sqlite_error("read failed", rc);
  }
  std::sort(expired.begin(), expired.end());
  const std::uint64_t wanted = std::uint64_t{limit} + expired.size();
  const auto read = static_cast<std::uint32_t>(std::min<std::uint64_t>(wanted, UINT32_MAX));
  auto stmt = prepare_query(conn, build_key_select(sqlite_dialect(), filter, request, read));
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  std::vector<EventKey> keys;
  int rc = SQLITE_DONE;
  while (keys.size() < limit && (rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    EventKey key;
    key.created_at = sqlite3_column_int64(*stmt, 0);
    if (sqlite3_column_bytes(*stmt, 1) != static_cast<int>(key.id.size())) {
      return Status::error("storage: a stored event id is unreadable");
    }
    std::memcpy(key.id.data(), sqlite3_column_blob(*stmt, 1), key.id.size());
    if (std::binary_search(expired.begin(), expired.end(), key.id)) continue;
    keys.push_back(key);
  }
  if (keys.size() < limit && rc != SQLITE_DONE) return sqlite_error("read failed", rc);
  newest_first_to_ascending(keys);
  visit_keys(keys, visit);
  return Status::ok();
}

Result<std::uint64_t> sqlite_count(SqliteConnection& conn, const std::vector<Filter>& filters,
                                   const QueryRequest& request) {
  if (filters.empty()) return std::uint64_t{0};
  SqlQuery q = build_count(filters, request);
  if (too_many_params(conn, q.params.size())) return count_in_parts(conn, filters, request);
  auto stmt = prepare_query(conn, q);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  const int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW) return sqlite_error("read failed", rc);
  return static_cast<std::uint64_t>(sqlite3_column_int64(*stmt, 0));
}

Result<bool> sqlite_contains(SqliteConnection& conn, const EventId& id) {
  auto stmt = conn.prepare(kContains);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  bind_bytes(*stmt, 1, id);
  const int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlite_error("read failed", rc);
  return rc == SQLITE_ROW;
}

Result<std::uint64_t> sqlite_max_seq(SqliteConnection& conn) {
  auto stmt = conn.prepare(kMaxSeq);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  const int rc = sqlite3_step(*stmt);
  if (rc == SQLITE_DONE) return std::uint64_t{0};
  if (rc != SQLITE_ROW) return sqlite_error("read failed", rc);
  return static_cast<std::uint64_t>(sqlite3_column_int64(*stmt, 0));
}

Status sqlite_scan_since(SqliteConnection& conn, std::uint64_t after_seq,
                         const std::function<bool(const StoredEvent&)>& visit, const Log* log) {
  auto stmt = conn.prepare(kScanSince);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  bind_int(*stmt, 1, clamp_seq(after_seq));
  return visit_rows(*stmt, RowCache(nullptr, log), visit);
}

}  // namespace relaycore::storage
