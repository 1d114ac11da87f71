// The PostgreSQL writes, on the storage's writer connection. Batches run the shared NIP-01 /
// NIP-09 rules (relaycore/storage_rules.hpp) inside one transaction that first takes advisory locks
// on everything the batch may replace, delete or insert, so that writers on other nodes touching
// the same slots or ids wait for it instead of deciding on a stale view.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "postgres/pg_connection.hpp"
#include "postgres/pg_prefetch.hpp"
#include "relaycore/event.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::postgres {

// The advisory lock keys a batch needs, sorted and unique: one per id and replacement slot it
// touches (see BatchKeys). Taken in this order, so two batches never deadlock.
std::vector<std::int64_t> lock_keys(const BatchKeys& batch);

// Deletes the events `where` (a condition on events, with its parameters) selects and, in the
// same statement, their tag rows (tags has no index by seq, pg_schema.cpp): by the keys
// relaycore_tag_keys reads from each event's JSON, or, for an event whose JSON does not give
// them, by a scan of tags by seq, which the EXISTS keeps from running when there is none.
// Returns id, kind, seq and pubkey of each, so that removals can be audited.
std::string removal_sql(std::string_view where);

Status pg_write_batch(PgConnection& conn, std::span<const EventPtr> events,
                      std::vector<WriteResult>& results);

Result<std::vector<RemovedEvent>> pg_purge_expired(PgConnection& conn, std::int64_t now);

Result<std::vector<RemovedEvent>> pg_erase(PgConnection& conn, std::span<const EventId> ids);

}  // namespace relaycore::postgres
