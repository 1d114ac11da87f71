// Pieces every built-in storage shares, so the memory and SQLite stores decide replacement,
// and deletion the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"
#include "relaycore/storage_rules.hpp"

namespace relaycore::storage {

// Parses a NIP-09 `a` tag value "<kind>:<pubkey hex>:<d>". Only replaceable and addressable kinds
// name a slot; anything else yields nothing. Replaceable kinds ignore the d part.
std::optional<Address> parse_address(std::string_view value);

// The id named by an `e` tag value, when it is 64 lowercase hex characters.
std::optional<EventId> parse_event_id(std::string_view value);

// True for the tags a SQL storage indexes: NIP-01 indexes single-letter tags only (a-z, A-Z),
// and only their first value.
bool is_indexed_tag(const Tag& tag) noexcept;

// The limit a query is served with: the filter's own, clamped to the request's ceiling.
std::uint32_t effective_limit(const Filter& filter, const QueryRequest& request) noexcept;

// True when the NIP-40 expiration has passed at `now` (expiration <= now).
bool is_expired(const Event& event, std::int64_t now) noexcept;

// Loads a row a storage wrote: its stored JSON (taken, not copied) and its id column. Refused
// ("error: storage: ...") when the JSON does not parse as an event or names another id than the
// row's, so a row altered outside relaycore is never served under another event's id. The id
// is not recomputed from the content: a SHA-256 per row would cost what the load saves.
Result<EventPtr> load_stored_row(std::string&& json, const EventId& row_id);

// The rejection for a version older than the one already stored.
Status newer_version_status();

// The rejection for an ephemeral event that reached a storage.
Status ephemeral_status();

// Sets `result` to a plain outcome; keeps removed ids and seq empty.
void set_outcome(WriteResult& result, WriteOutcome outcome, Status status = Status::ok());

}  // namespace relaycore::storage
