// Event keys in the order a NIP-77 sync reconciles in (oldest first, then lowest id), from
// reads that come newest first.
#pragma once

#include <vector>

#include "relaycore/storage.hpp"

namespace relaycore::storage {

// Turns keys in NIP-01 result order (created_at descending, then id ascending) into ascending
// order (created_at ascending, then id ascending), in place and in linear time.
void newest_first_to_ascending(std::vector<EventKey>& keys);

// Hands `keys` to `visit` until it returns false.
void visit_keys(const std::vector<EventKey>& keys,
                const std::function<bool(const EventKey&)>& visit);

}  // namespace relaycore::storage
