#include "protocol/json_dom.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace relaycore::json {
namespace {

// The calling thread's parser, reallocated only when the depth limit changes. `depth` is the
// simdjson max_depth it was allocated with; 0 until the first allocation.
struct ThreadParser {
  simdjson::dom::parser parser;
  std::size_t depth = 0;
};

std::string describe(simdjson::error_code code, const Limits& limits) {
  switch (code) {
    case simdjson::DEPTH_ERROR:
      return fmt::format("JSON is nested too deep (max depth {})", limits.max_json_depth);
    case simdjson::UTF8_ERROR:
      return "message is not valid UTF-8";
    case simdjson::UNESCAPED_CHARS:
      return "control characters in JSON strings must be escaped";
    case simdjson::UNCLOSED_STRING:
      return "unterminated JSON string";
    case simdjson::STRING_ERROR:
      return "invalid escape or lone surrogate in JSON string";
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
      return "malformed JSON literal (expected true, false or null)";
    case simdjson::NUMBER_ERROR:
    case simdjson::NUMBER_OUT_OF_RANGE:
      return "malformed or out-of-range JSON number";
    case simdjson::EMPTY:
      return "empty message";
    case simdjson::CAPACITY:
    case simdjson::MEMALLOC:
      return "message is too large";
    default:
      return "malformed JSON";
  }
}

}  // namespace

Status parse(std::string_view text, const Limits& limits, element& root) {
  thread_local ThreadParser tp;
  // simdjson counts the document itself as a level, so N nested containers need max_depth N+1.
  // With +1, max_json_depth means what Limits says: an event frame needs exactly 4.
  const std::size_t depth = limits.max_json_depth + 1;
  if (tp.depth != depth) {
    if (tp.parser.allocate(std::max<std::size_t>(text.size(), 4096), depth) != simdjson::SUCCESS) {
      tp.depth = 0;
      return Status::error("out of memory");
    }
    tp.depth = depth;
  }
  auto result = tp.parser.parse(text.data(), text.size(), true);
  if (result.error() != simdjson::SUCCESS) {
    return Status::invalid(describe(result.error(), limits));
  }
  root = result.value_unsafe();
  return Status::ok();
}

const char* type_name(const element& e) noexcept {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
      return "array";
    case simdjson::dom::element_type::OBJECT:
      return "object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
      return "integer";
    case simdjson::dom::element_type::DOUBLE:
      return "non-integer number";
    case simdjson::dom::element_type::STRING:
      return "string";
    case simdjson::dom::element_type::BOOL:
      return "boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

std::string shown(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t end = max_bytes;
  // Back up over continuation bytes so a multi-byte character is never split.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end)) + "...";
}

Status check_unique_keys(const object& obj, std::string_view what) {
  thread_local std::vector<std::string_view> keys;
  keys.clear();
  for (auto field : obj) keys.push_back(field.key);
  std::sort(keys.begin(), keys.end());
  auto dup = std::adjacent_find(keys.begin(), keys.end());
  if (dup != keys.end()) {
    std::string key = shown(*dup, 64);
    keys.clear();
    return Status::invalid("duplicate key \"" + key + "\" in " + std::string(what));
  }
  keys.clear();
  return Status::ok();
}

}  // namespace relaycore::json
