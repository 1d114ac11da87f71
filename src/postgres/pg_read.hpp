// The PostgreSQL reads, each on a pooled connection the caller holds for the duration. Filters
// become SQL through the builder the SQLite storage uses (storage/filter_sql.hpp); NIP-50 search
// matches the events.search tsvector, made from the words SQLite indexes.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "postgres/pg_connection.hpp"
#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"
#include "storage/filter_sql.hpp"
#include "util/log.hpp"

namespace relaycore::postgres {

// The SELECT pg_query runs for a filter with the limit it is served with: NIP-01 order, or
// rank order for a search, and the LIMIT in the SQL.
storage::SqlQuery pg_query_sql(const Filter& filter, const QueryRequest& request);

// A row that cannot be served as the event its id names is skipped and reported to `log`.
Status pg_query(PgConnection& conn, const Filter& filter, const QueryRequest& request,
                const std::function<bool(const StoredEvent&)>& visit, const Log* log = nullptr);

// Storage::scan_keys, reading (created_at, id) from the history indexes.
Status pg_scan_keys(PgConnection& conn, const Filter& filter, const QueryRequest& request,
                    const std::function<bool(const EventKey&)>& visit);

Result<std::uint64_t> pg_count(PgConnection& conn, const std::vector<Filter>& filters,
                               const QueryRequest& request);

Result<bool> pg_contains(PgConnection& conn, const EventId& id);

// The last value the shared sequence gave out, so deleting the newest events never makes it go
// backwards (it may count a value a failed batch took and never committed).
Result<std::uint64_t> pg_max_seq(PgConnection& conn);

// Storage::size_bytes: the bytes of the stored events' JSON.
Result<std::uint64_t> pg_size_bytes(PgConnection& conn);

Status pg_scan_since(PgConnection& conn, std::uint64_t after_seq,
                     const std::function<bool(const StoredEvent&)>& visit,
                     const Log* log = nullptr);

}  // namespace relaycore::postgres
