#include "storage/storage_util.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <limits>
#include <utility>

#include "relaycore/hex.hpp"

namespace relaycore {

bool supersedes(std::int64_t a_created, const EventId& a_id, std::int64_t b_created,
                const EventId& b_id) noexcept {
  if (a_created != b_created) return a_created > b_created;
  return a_id < b_id;
}

}  // namespace relaycore

namespace relaycore::storage {

std::optional<Address> parse_address(std::string_view value) {
  std::size_t first = value.find(':');
  if (first == std::string_view::npos) return std::nullopt;
  std::size_t second = value.find(':', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  std::string_view kind_text = value.substr(0, first);
  unsigned kind = 0;
  auto [end, ec] = std::from_chars(kind_text.data(), kind_text.data() + kind_text.size(), kind);
  if (ec != std::errc() || end != kind_text.data() + kind_text.size() || kind_text.empty() ||
      kind > std::numeric_limits<std::uint16_t>::max()) {
    return std::nullopt;
  }
  Address address;
  address.kind = static_cast<std::uint16_t>(kind);
  if (!from_hex(value.substr(first + 1, second - first - 1), address.pubkey)) return std::nullopt;
  switch (kind_class(address.kind)) {
    case KindClass::kReplaceable:
      return address;
    case KindClass::kAddressable:
      address.d = std::string(value.substr(second + 1));
      return address;
    default:
      return std::nullopt;
  }
}

std::optional<EventId> parse_event_id(std::string_view value) {
  EventId id;
  if (!from_hex(value, id)) return std::nullopt;
  return id;
}

bool is_indexed_tag(const Tag& tag) noexcept {
  if (tag.size() < 2 || tag[0].size() != 1) return false;
  const char c = tag[0][0];
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::uint32_t effective_limit(const Filter& filter, const QueryRequest& request) noexcept {
  return std::min(filter.limit.value_or(request.max_limit), request.max_limit);
}

bool is_expired(const Event& event, std::int64_t now) noexcept {
  auto expiration = event.expiration();
  return expiration && *expiration <= now;
}

Result<EventPtr> load_stored_row(std::string&& json, const EventId& row_id) {
  Result<EventPtr> event = Event::load_stored(std::move(json));
  if (!event) {
    return Status::error("storage: a stored event is unreadable (" + event.error().message() + ")");
  }
  if ((*event)->id() != row_id) {
    return Status::error("storage: a stored event's JSON holds another id than its row");
  }
  return event;
}

Status newer_version_status() { return Status::duplicate("have a newer version of this event"); }

Status ephemeral_status() { return Status::invalid("ephemeral events are not stored"); }

void set_outcome(WriteResult& result, WriteOutcome outcome, Status status) {
  result.outcome = outcome;
  result.status = std::move(status);
  result.seq = 0;
  result.removed.clear();
}

}  // namespace relaycore::storage
