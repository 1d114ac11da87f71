// Strict reading of an event object: exact field set, exact types, lowercase hex of exact
// length, limits checked while reading so oversize input is refused before it is copied.
#include <fmt/format.h>

#include <limits>
#include <string>

#include "protocol/json_dom.hpp"
#include "relaycore/event.hpp"
#include "relaycore/hex.hpp"

namespace relaycore {
namespace json {
namespace {

enum FieldBit : unsigned {
  kId = 1u << 0,
  kPubkey = 1u << 1,
  kCreatedAt = 1u << 2,
  kKind = 1u << 3,
  kTags = 1u << 4,
  kContent = 1u << 5,
  kSig = 1u << 6,
  kAll = (1u << 7) - 1,
};

constexpr std::string_view kFieldNames[] = {"id",   "pubkey",  "created_at", "kind",
                                            "tags", "content", "sig"};

Status wrong_type(std::string_view field, std::string_view expected, const element& found) {
  return Status::invalid(std::string(field) + " must be " + std::string(expected) + ", not " +
                         type_name(found));
}

template <std::size_t N>
Status read_hex(std::string_view field, const element& value, std::array<std::uint8_t, N>& out) {
  std::string_view s;
  if (value.get_string().get(s) != simdjson::SUCCESS) {
    return wrong_type(field, "a string", value);
  }
  if (s.size() != 2 * N) {
    return Status::invalid(
        fmt::format("{} must be {} hex characters, not {}", field, 2 * N, s.size()));
  }
  if (!from_hex(s, out)) {
    return Status::invalid(std::string(field) + " must be lowercase hex");
  }
  return Status::ok();
}

Status read_tags(const element& value, const Limits& limits, std::vector<Tag>& out) {
  array tags;
  if (value.get_array().get(tags) != simdjson::SUCCESS) {
    return wrong_type("tags", "an array", value);
  }
  std::size_t count = tags.size();
  if (count > limits.max_event_tags) {
    return Status::invalid(fmt::format("too many tags ({}, max {})", count, limits.max_event_tags));
  }
  out.reserve(count);
  std::size_t i = 0;
  for (element tag_el : tags) {
    array tag;
    if (tag_el.get_array().get(tag) != simdjson::SUCCESS) {
      return Status::invalid(fmt::format("tag {} must be an array, not {}", i, type_name(tag_el)));
    }
    std::size_t n = tag.size();
    if (n == 0) return Status::invalid(fmt::format("tag {} is empty", i));
    if (n > limits.max_tag_strings) {
      return Status::invalid(
          fmt::format("tag {} has too many values ({}, max {})", i, n, limits.max_tag_strings));
    }
    Tag& t = out.emplace_back();
    t.reserve(n);
    for (element v : tag) {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) {
        return Status::invalid(
            fmt::format("tag {} must hold only strings, not {}", i, type_name(v)));
      }
      if (s.size() > limits.max_tag_value_bytes) {
        return Status::invalid(fmt::format("tag {} value is too large ({} bytes, max {})", i,
                                           s.size(), limits.max_tag_value_bytes));
      }
      t.emplace_back(s);
    }
    ++i;
  }
  return Status::ok();
}

}  // namespace

Result<EventFields> event_fields(const element& e, const Limits& limits) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    return Status::invalid(std::string("event must be a JSON object, not ") + type_name(e));
  }
  if (Status s = check_unique_keys(obj, "event"); !s) return s;

  EventFields f;
  unsigned seen = 0;
  for (auto field : obj) {
    const std::string_view key = field.key;
    const element& v = field.value;
    Status s;
    if (key == "id") {
      seen |= kId;
      s = read_hex("id", v, f.id);
    } else if (key == "pubkey") {
      seen |= kPubkey;
      s = read_hex("pubkey", v, f.pubkey);
    } else if (key == "sig") {
      seen |= kSig;
      s = read_hex("sig", v, f.sig);
    } else if (key == "created_at") {
      seen |= kCreatedAt;
      std::int64_t t = 0;
      if (v.type() == simdjson::dom::element_type::UINT64) {
        s = Status::invalid("created_at is out of range");
      } else if (v.get_int64().get(t) != simdjson::SUCCESS) {
        s = wrong_type("created_at", "an integer", v);
      } else if (t < 0) {
        s = Status::invalid("created_at must not be negative");
      }
      f.created_at = t;
    } else if (key == "kind") {
      seen |= kKind;
      std::int64_t k = 0;
      if (v.type() == simdjson::dom::element_type::UINT64) {
        s = Status::invalid("kind must be between 0 and 65535");
      } else if (v.get_int64().get(k) != simdjson::SUCCESS) {
        s = wrong_type("kind", "an integer", v);
      } else if (k < 0 || k > 65535) {
        s = Status::invalid("kind must be between 0 and 65535");
      }
      f.kind = static_cast<std::uint16_t>(k);
    } else if (key == "tags") {
      seen |= kTags;
      s = read_tags(v, limits, f.tags);
    } else if (key == "content") {
      seen |= kContent;
      std::string_view c;
      if (v.get_string().get(c) != simdjson::SUCCESS) {
        s = wrong_type("content", "a string", v);
      } else if (c.size() > limits.max_content_bytes) {
        s = Status::invalid(fmt::format("content is too large ({} bytes, max {})", c.size(),
                                        limits.max_content_bytes));
      } else {
        f.content.assign(c);
      }
    }
    // Unknown top-level fields are allowed and dropped from the canonical form.
    if (!s) return s;
  }
  if (seen != kAll) {
    for (unsigned bit = 0; bit < 7; ++bit) {
      if ((seen & (1u << bit)) == 0) {
        return Status::invalid("event is missing \"" + std::string(kFieldNames[bit]) + "\"");
      }
    }
  }
  return f;
}

bool is_protected_event_json(std::string_view text, const Limits& limits) {
  element root;
  if (!parse(text, limits, root)) return false;
  array tags;
  if (root["tags"].get_array().get(tags) != simdjson::SUCCESS) return false;
  for (element tag : tags) {
    array values;
    std::string_view name;
    if (tag.get_array().get(values) == simdjson::SUCCESS && values.size() > 0 &&
        values.at(0).get_string().get(name) == simdjson::SUCCESS && name == kProtectedTag) {
      return true;
    }
  }
  return false;
}

}  // namespace json

namespace {

// Limits for loading what a storage wrote itself: the event passed the host's limits when it
// was accepted, which may have been larger than the defaults.
const Limits& stored_limits() noexcept {
  static const Limits limits = [] {
    constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
    Limits l;
    l.max_message_bytes = kMax;
    l.max_event_bytes = kMax;
    l.max_event_tags = kMax;
    l.max_tag_strings = kMax;
    l.max_tag_value_bytes = kMax;
    l.max_content_bytes = kMax;
    return l;
  }();
  return limits;
}

}  // namespace

Result<EventPtr> Event::load_stored(std::string&& text) {
  json::element root;
  if (Status s = json::parse(text, stored_limits(), root); !s) return s;
  Result<EventFields> fields = json::event_fields(root, stored_limits());
  if (!fields) return fields.error();
  // simdjson has validated the whole text as UTF-8, and event_fields the shape, which is all
  // create() would check with limits this large.
  return EventPtr(
      std::make_shared<const Event>(Passkey(), std::move(fields).value(), std::move(text)));
}

Result<EventPtr> parse_event(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_message_bytes) {
    return Status::invalid(fmt::format("event is too large ({} bytes, max {})", text.size(),
                                       limits.max_message_bytes));
  }
  json::element root;
  if (Status s = json::parse(text, limits, root); !s) return s;
  Result<EventFields> fields = json::event_fields(root, limits);
  if (!fields) return fields.error();
  return Event::create(std::move(fields).value(), limits);
}

}  // namespace relaycore
