#include "relaycore/filter.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "protocol/json_dom.hpp"
#include "protocol/json_writer.hpp"
#include "protocol/search_text.hpp"
#include "relaycore/hex.hpp"

namespace relaycore {
namespace json {
namespace {

Status field_error(std::string_view field, std::string_view what) {
  return Status::invalid("filter \"" + std::string(field) + "\" " + std::string(what));
}

template <typename T>
void sort_unique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

Result<array> bounded_array(std::string_view field, const element& v, const Limits& limits) {
  array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    return field_error(field, std::string("must be an array, not ") + type_name(v));
  }
  if (arr.size() > limits.max_filter_values) {
    return field_error(field, fmt::format("has too many values ({}, max {})", arr.size(),
                                          limits.max_filter_values));
  }
  return arr;
}

Status read_hex_list(std::string_view field, const element& v, const Limits& limits,
                     std::optional<std::vector<Bytes32>>& out) {
  Result<array> arr = bounded_array(field, v, limits);
  if (!arr) return arr.error();
  std::vector<Bytes32> values;
  values.reserve(arr->size());
  for (element item : *arr) {
    std::string_view s;
    if (item.get_string().get(s) != simdjson::SUCCESS) {
      return field_error(field, std::string("must hold strings, not ") + type_name(item));
    }
    Bytes32 bytes{};
    if (!from_hex(s, bytes)) {
      return field_error(field, "values must be 64 lowercase hex characters");
    }
    values.push_back(bytes);
  }
  sort_unique(values);
  out = std::move(values);
  return Status::ok();
}

Status read_kinds(const element& v, const Limits& limits, Filter& f) {
  Result<array> arr = bounded_array("kinds", v, limits);
  if (!arr) return arr.error();
  std::vector<std::uint16_t> kinds;
  kinds.reserve(arr->size());
  for (element item : *arr) {
    std::int64_t k = 0;
    if (item.type() == simdjson::dom::element_type::UINT64) {
      return field_error("kinds", "values must be between 0 and 65535");
    }
    if (item.get_int64().get(k) != simdjson::SUCCESS) {
      return field_error("kinds", std::string("must hold integers, not ") + type_name(item));
    }
    if (k < 0 || k > 65535) return field_error("kinds", "values must be between 0 and 65535");
    kinds.push_back(static_cast<std::uint16_t>(k));
  }
  sort_unique(kinds);
  f.kinds = std::move(kinds);
  return Status::ok();
}

Status read_timestamp(std::string_view field, const element& v, std::optional<std::int64_t>& out) {
  std::int64_t t = 0;
  if (v.type() == simdjson::dom::element_type::UINT64) {
    out = INT64_MAX;  // beyond any event; a valid, if empty, window
    return Status::ok();
  }
  if (v.get_int64().get(t) != simdjson::SUCCESS) {
    return field_error(field, std::string("must be an integer, not ") + type_name(v));
  }
  if (t < 0) return field_error(field, "must not be negative");
  out = t;
  return Status::ok();
}

Status read_limit(const element& v, Filter& f) {
  std::uint64_t n = 0;
  if (v.type() == simdjson::dom::element_type::INT64) {
    std::int64_t i = v.get_int64().value_unsafe();
    if (i < 0) return field_error("limit", "must not be negative");
    n = static_cast<std::uint64_t>(i);
  } else if (v.get_uint64().get(n) != simdjson::SUCCESS) {
    return field_error("limit", std::string("must be an integer, not ") + type_name(v));
  }
  f.limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(n, UINT32_MAX));
  return Status::ok();
}

Status read_tag_condition(std::string_view key, const element& v, const Limits& limits, Filter& f) {
  Result<array> arr = bounded_array(key, v, limits);
  if (!arr) return arr.error();
  TagCondition cond;
  cond.name = key[1];
  cond.values.reserve(arr->size());
  for (element item : *arr) {
    std::string_view s;
    if (item.get_string().get(s) != simdjson::SUCCESS) {
      return field_error(key, std::string("must hold strings, not ") + type_name(item));
    }
    if (s.size() > limits.max_tag_value_bytes) {
      return field_error(key, fmt::format("value is too large ({} bytes, max {})", s.size(),
                                          limits.max_tag_value_bytes));
    }
    cond.values.emplace_back(s);
  }
  sort_unique(cond.values);
  f.tags.push_back(std::move(cond));
  return Status::ok();
}

bool is_tag_key(std::string_view key) noexcept {
  if (key.size() != 2 || key[0] != '#') return false;
  char c = key[1];
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

Result<Filter> filter(const element& e, const Limits& limits) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    return Status::invalid(std::string("filter must be a JSON object, not ") + type_name(e));
  }
  if (Status s = check_unique_keys(obj, "filter"); !s) return s;
  Filter f;
  for (auto field : obj) {
    const std::string_view key = field.key;
    const element& v = field.value;
    Status s;
    if (key == "ids") {
      s = read_hex_list("ids", v, limits, f.ids);
    } else if (key == "authors") {
      s = read_hex_list("authors", v, limits, f.authors);
    } else if (key == "kinds") {
      s = read_kinds(v, limits, f);
    } else if (key == "since") {
      s = read_timestamp("since", v, f.since);
    } else if (key == "until") {
      s = read_timestamp("until", v, f.until);
    } else if (key == "limit") {
      s = read_limit(v, f);
    } else if (key == "search") {
      std::string_view q;
      if (v.get_string().get(q) != simdjson::SUCCESS) {
        s = field_error("search", fmt::format("must be a string, not {}", type_name(v)));
      } else if (q.size() > limits.max_search_bytes) {
        s = field_error("search", fmt::format("is too long ({} bytes, max {})", q.size(),
                                              limits.max_search_bytes));
      } else {
        f.search.emplace(q);
      }
    } else if (is_tag_key(key)) {
      if (f.tags.size() >= limits.max_filter_tags) {
        s = Status::invalid(
            fmt::format("filter has too many tag conditions (max {})", limits.max_filter_tags));
      } else {
        s = read_tag_condition(key, v, limits, f);
      }
    } else {
      s = Status::invalid("unknown filter field \"" + shown(key, 64) + "\"");
    }
    if (!s) return s;
  }
  std::sort(f.tags.begin(), f.tags.end(),
            [](const TagCondition& a, const TagCondition& b) { return a.name < b.name; });
  return f;
}

}  // namespace json

namespace {

template <typename T>
bool contains(const std::optional<std::vector<T>>& list, const T& value) noexcept {
  return !list || std::binary_search(list->begin(), list->end(), value);
}

bool tag_matches(const TagCondition& cond, const Event& event) noexcept {
  for (const Tag& tag : event.tags()) {
    if (tag.size() < 2 || tag[0].size() != 1 || tag[0][0] != cond.name) continue;
    if (std::binary_search(cond.values.begin(), cond.values.end(), tag[1])) return true;
  }
  return false;
}

void append_hex_list(std::string& out, std::string_view key, const std::vector<Bytes32>& list) {
  json::append_string(out, key);
  out.append(":[");
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i != 0) out.push_back(',');
    json::append_hex_string(out, list[i].data(), list[i].size());
  }
  out.push_back(']');
}

}  // namespace

bool Filter::matches(const Event& event) const noexcept {
  if (since && event.created_at() < *since) return false;
  if (until && event.created_at() > *until) return false;
  if (!contains(kinds, event.kind())) return false;
  if (!contains(authors, event.pubkey())) return false;
  if (!contains(ids, event.id())) return false;
  for (const TagCondition& cond : tags) {
    if (!tag_matches(cond, event)) return false;
  }
  return !search || search::term_frequency(search::query_words(*search), event.content()) != 0;
}

std::string Filter::to_json() const {
  std::string out = "{";
  auto comma = [&out] {
    if (out.size() > 1) out.push_back(',');
  };
  if (ids) {
    comma();
    append_hex_list(out, "ids", *ids);
  }
  if (authors) {
    comma();
    append_hex_list(out, "authors", *authors);
  }
  if (kinds) {
    comma();
    out.append("\"kinds\":[");
    for (std::size_t i = 0; i < kinds->size(); ++i) {
      if (i != 0) out.push_back(',');
      json::append_uint(out, (*kinds)[i]);
    }
    out.push_back(']');
  }
  for (const TagCondition& cond : tags) {
    comma();
    out.append("\"#").push_back(cond.name);
    out.append("\":[");
    for (std::size_t i = 0; i < cond.values.size(); ++i) {
      if (i != 0) out.push_back(',');
      json::append_string(out, cond.values[i]);
    }
    out.push_back(']');
  }
  if (since) {
    comma();
    out.append("\"since\":");
    json::append_int(out, *since);
  }
  if (until) {
    comma();
    out.append("\"until\":");
    json::append_int(out, *until);
  }
  if (limit) {
    comma();
    out.append("\"limit\":");
    json::append_uint(out, *limit);
  }
  if (search) {
    comma();
    out.append("\"search\":");
    json::append_string(out, *search);
  }
  out.push_back('}');
  return out;
}

Result<Filter> parse_filter(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_message_bytes) {
    return Status::invalid(fmt::format("filter is too large ({} bytes, max {})", text.size(),
                                       limits.max_message_bytes));
  }
  json::element root;
  if (Status s = json::parse(text, limits, root); !s) return s;
  return json::filter(root, limits);
}

bool matches_any(const std::vector<Filter>& filters, const Event& event) noexcept {
  for (const Filter& f : filters) {
    if (f.matches(event)) return true;
  }
  return false;
}

}  // namespace relaycore
