// Reading JSON with simdjson's DOM parser, strictly: one parser per thread, depth and size
// bounded by Limits, duplicate keys found, and every simdjson error turned into an "invalid:"
// Status that a client can read.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/status.hpp"

namespace relaycore::json {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Parses `text` with this thread's parser. `root` stays valid until the next parse on the same
// thread, so callers copy out what they keep before returning.
Status parse(std::string_view text, const Limits& limits, element& root);

// "string", "array", ... for messages that say what was found instead.
const char* type_name(const element& e) noexcept;

// At most `max_bytes` of client text to quote in a message, cut at a UTF-8 character boundary
// (so the reply stays valid UTF-8) and marked with "..." when cut.
std::string shown(std::string_view s, std::size_t max_bytes);

// "invalid: duplicate key \"<k>\" in <what>" when any key repeats.
Status check_unique_keys(const object& obj, std::string_view what);

// The event fields of an event object, checked for shape, types and limits (not id or sig).
Result<EventFields> event_fields(const element& e, const Limits& limits);

Result<Filter> filter(const element& e, const Limits& limits);

// NIP-70: the name of the tag that marks an event only its author may publish.
inline constexpr std::string_view kProtectedTag = "-";

// Whether `text` parses, under `limits`, as a JSON object whose "tags" hold a tag named
// kProtectedTag: a protected event, however incomplete otherwise. What a repost embeds in its
// content is read this way, since NIP-70 forbids embedding a protected event at all.
bool is_protected_event_json(std::string_view text, const Limits& limits);

}  // namespace relaycore::json
