// The SQLite writer's operations. Each runs in one BEGIN IMMEDIATE transaction on the writer
// connection and rolls back completely on any error.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"
#include "storage/sqlite_connection.hpp"
#include "storage/sqlite_search_backlog.hpp"

namespace relaycore::storage {

// Each keeps the search index in step with the events it stores and removes: their words go
// through `backlog` (sqlite_search_backlog.hpp), which a committed transaction updates. A null
// backlog means no search index (SqliteOptions::search_index false).

// Storage::write_batch: the whole batch in one transaction, events applied in order.
Status sqlite_write_batch(SqliteConnection& conn, std::span<const EventPtr> events,
                          std::vector<WriteResult>& results, SearchBacklog* backlog);

// Storage::purge_expired.
Result<std::vector<RemovedEvent>> sqlite_purge_expired(SqliteConnection& conn, std::int64_t now,
                                                       SearchBacklog* backlog);

// Storage::erase.
Result<std::vector<RemovedEvent>> sqlite_erase(SqliteConnection& conn, std::span<const EventId> ids,
                                               SearchBacklog* backlog);

// Adds the words of the whole backlog to the search index, in a transaction of its own.
Status sqlite_index_backlog(SqliteConnection& conn, SearchBacklog& backlog);

// Storage::size_bytes: the bytes of the stored events' JSON, kept in stored_bytes by the writes
// above, so that a removal counts at once, before any VACUUM.
Result<std::uint64_t> sqlite_size_bytes(SqliteConnection& conn);

}  // namespace relaycore::storage
