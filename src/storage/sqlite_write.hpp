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

namespace relaycore::storage {

// Each keeps the search index in step with the events it stores and removes, in its
// transaction, unless `search_index` is false (SqliteOptions::search_index).

// Storage::write_batch: the whole batch in one transaction, events applied in order.
Status sqlite_write_batch(SqliteConnection& conn, std::span<const EventPtr> events,
                          std::vector<WriteResult>& results, bool search_index);

// Storage::purge_expired.
Result<std::vector<RemovedEvent>> sqlite_purge_expired(SqliteConnection& conn, std::int64_t now,
                                                       bool search_index);

// Storage::erase.
Result<std::vector<RemovedEvent>> sqlite_erase(SqliteConnection& conn, std::span<const EventId> ids,
                                               bool search_index);

// Storage::size_bytes: the bytes of the stored events' JSON, kept in stored_bytes by the writes
// above, so that a removal counts at once, before any VACUUM.
Result<std::uint64_t> sqlite_size_bytes(SqliteConnection& conn);

}  // namespace relaycore::storage
