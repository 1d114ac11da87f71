// Filter: one NIP-01 filter object, parsed strictly and matched against events. Conditions in
// one filter are ANDed; values inside one condition are ORed; the filters of a REQ are ORed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

// A "#x" condition: the event must have a tag named `name` whose value is one of `values`.
struct TagCondition {
  char name = 0;
  std::vector<std::string> values;  // sorted, unique
};

struct Filter {
  // Each present list is sorted and free of repeats, so matching can binary-search it.
  std::optional<std::vector<EventId>> ids;
  std::optional<std::vector<Pubkey>> authors;
  std::optional<std::vector<std::uint16_t>> kinds;
  std::vector<TagCondition> tags;     // sorted by name, one per name
  std::optional<std::int64_t> since;  // inclusive
  std::optional<std::int64_t> until;  // inclusive
  std::optional<std::uint32_t> limit;
  // NIP-50: every word of it must occur in the content (docs/search.md has the rules).
  std::optional<std::string> search;

  // True when the event satisfies every condition, the search included.
  RELAYCORE_API bool matches(const Event& event) const noexcept;

  // The filter as a JSON object, in a stable order.
  RELAYCORE_API std::string to_json() const;
};

// Strictly parses one filter object. Failures are "invalid: ...".
RELAYCORE_API Result<Filter> parse_filter(std::string_view json, const Limits& limits = Limits());

// True when any of the filters matches.
RELAYCORE_API bool matches_any(const std::vector<Filter>& filters, const Event& event) noexcept;

}  // namespace relaycore
