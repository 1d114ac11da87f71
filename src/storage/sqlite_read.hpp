// The SQLite reads, each on a reader connection the caller holds for the duration. Every read
// statement is reset before returning, so no snapshot stays open to hold back checkpoints.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"
#include "storage/sqlite_connection.hpp"
#include "storage/sqlite_event_cache.hpp"
#include "util/log.hpp"

namespace relaycore::storage {

// Storage::scan_since's statement: a range of the primary key, so reading on from a position
// (as retention does, a batch at a time) costs what it reads.
inline constexpr std::string_view kScanSince =
    "SELECT seq, id, json FROM events WHERE seq > ?1 ORDER BY seq";

// With a cache, rows already cached are not parsed again and rows parsed are cached. A row that
// cannot be served as the event its id names is skipped and reported to `log`.
Status sqlite_query(SqliteConnection& conn, const Filter& filter, const QueryRequest& request,
                    const std::function<bool(const StoredEvent&)>& visit,
                    EventCache* cache = nullptr, const Log* log = nullptr);

// Storage::scan_keys, from the history indexes without reading the events.
Status sqlite_scan_keys(SqliteConnection& conn, const Filter& filter, const QueryRequest& request,
                        const std::function<bool(const EventKey&)>& visit);

Result<std::uint64_t> sqlite_count(SqliteConnection& conn, const std::vector<Filter>& filters,
                                   const QueryRequest& request);

Result<bool> sqlite_contains(SqliteConnection& conn, const EventId& id);

// The highest sequence ever assigned (stored_bytes.last_seq), so that deleting the newest events
// never makes it go backwards.
Result<std::uint64_t> sqlite_max_seq(SqliteConnection& conn);

Status sqlite_scan_since(SqliteConnection& conn, std::uint64_t after_seq,
                         const std::function<bool(const StoredEvent&)>& visit,
                         const Log* log = nullptr);

}  // namespace relaycore::storage
