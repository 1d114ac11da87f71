#include "relaycore/event.hpp"

#include <simdjson.h>

#include <charconv>
#include <string>

#include "crypto/sha256.hpp"
#include "protocol/json_writer.hpp"

namespace relaycore {
namespace {

// Fixed positions in the canonical form {"id":"<64>","pubkey":"<64>",...,"sig":"<128>"}.
constexpr std::size_t kIdOffset = 7;  // after {"id":"
constexpr std::size_t kPubkeyOffset = kIdOffset + 64 + 12;  // after ","pubkey":"
constexpr std::string_view kContentKey = ",\"content\":";
constexpr std::string_view kSigKey = ",\"sig\":";

bool valid_utf8(std::string_view s) noexcept { return simdjson::validate_utf8(s.data(), s.size()); }

std::string too_large(std::string_view what, std::size_t size, std::size_t max) {
  return std::string(what) + " is too large (" + std::to_string(size) + " bytes, max " +
         std::to_string(max) + ")";
}

// Checks the limits and shape that parse_event also checks, so that events built from fields
// (by hosts, storage or the signer) obey the same rules as events read from clients.
Status check_fields(const EventFields& f, const Limits& limits) {
  if (f.created_at < 0) return Status::invalid("created_at must not be negative");
  if (f.content.size() > limits.max_content_bytes) {
    return Status::invalid(too_large("content", f.content.size(), limits.max_content_bytes));
  }
  if (!valid_utf8(f.content)) return Status::invalid("content is not valid UTF-8");
  if (f.tags.size() > limits.max_event_tags) {
    return Status::invalid("too many tags (" + std::to_string(f.tags.size()) + ", max " +
                           std::to_string(limits.max_event_tags) + ")");
  }
  for (std::size_t i = 0; i < f.tags.size(); ++i) {
    const Tag& tag = f.tags[i];
    if (tag.empty()) return Status::invalid("tag " + std::to_string(i) + " is empty");
    if (tag.size() > limits.max_tag_strings) {
      return Status::invalid("tag " + std::to_string(i) + " has too many values (" +
                             std::to_string(tag.size()) + ", max " +
                             std::to_string(limits.max_tag_strings) + ")");
    }
    for (const std::string& value : tag) {
      if (value.size() > limits.max_tag_value_bytes) {
        return Status::invalid(
            too_large("tag " + std::to_string(i) + " value", value.size(),
                      limits.max_tag_value_bytes));
      }
      if (!valid_utf8(value)) {
        return Status::invalid("tag " + std::to_string(i) + " is not valid UTF-8");
      }
    }
  }
  return Status::ok();
}

void append_tags(std::string& out, const std::vector<Tag>& tags) {
  out.push_back('[');
  for (std::size_t i = 0; i < tags.size(); ++i) {
    if (i != 0) out.push_back(',');
    out.push_back('[');
    for (std::size_t j = 0; j < tags[i].size(); ++j) {
      if (j != 0) out.push_back(',');
      json::append_string(out, tags[i][j]);
    }
    out.push_back(']');
  }
  out.push_back(']');
}

std::size_t tags_size(const std::vector<Tag>& tags) {
  std::size_t n = 2 + (tags.empty() ? 0 : tags.size() - 1);
  for (const Tag& tag : tags) {
    n += 2 + tag.size() - 1;
    for (const std::string& value : tag) n += json::quoted_size(value);
  }
  return n;
}

// A NIP-40 timestamp: decimal digits that fit in int64. Anything else is ignored, as if absent.
std::optional<std::int64_t> parse_expiration(const std::vector<Tag>& tags) {
  for (const Tag& tag : tags) {
    if (tag.size() < 2 || tag[0] != "expiration") continue;
    const std::string& v = tag[1];
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (ec != std::errc() || end != v.data() + v.size() || v.empty() || v[0] == '-') {
      return std::nullopt;
    }
    return value;
  }
  return std::nullopt;
}

}  // namespace

KindClass kind_class(std::uint32_t kind) noexcept {
  if (kind == 0 || kind == 3 || (kind >= 10000 && kind < 20000)) return KindClass::kReplaceable;
  if (kind >= 20000 && kind < 30000) return KindClass::kEphemeral;
  if (kind >= 30000 && kind < 40000) return KindClass::kAddressable;
  return KindClass::kRegular;
}

Event::Event(PrivateTag, EventFields&& fields) : fields_(std::move(fields)) {
  const std::size_t estimate = 200 + tags_size(fields_.tags) + json::quoted_size(fields_.content);
  json_.reserve(estimate);
  json_.append("{\"id\":");
  json::append_hex_string(json_, fields_.id.data(), fields_.id.size());
  json_.append(",\"pubkey\":");
  json::append_hex_string(json_, fields_.pubkey.data(), fields_.pubkey.size());
  json_.append(",\"created_at\":");
  json::append_int(json_, fields_.created_at);
  json_.append(",\"kind\":");
  json::append_uint(json_, fields_.kind);
  json_.append(",\"tags\":");
  tags_begin_ = static_cast<std::uint32_t>(json_.size());
  append_tags(json_, fields_.tags);
  tags_end_ = static_cast<std::uint32_t>(json_.size());
  json_.append(kContentKey);
  json::append_string(json_, fields_.content);
  content_end_ = static_cast<std::uint32_t>(json_.size());
  json_.append(kSigKey);
  json::append_hex_string(json_, fields_.sig.data(), fields_.sig.size());
  json_.push_back('}');
  expiration_ = parse_expiration(fields_.tags);
}

Result<EventPtr> Event::create(EventFields&& fields, const Limits& limits) {
  if (Status s = check_fields(fields, limits); !s) return s;
  auto event = std::make_shared<const Event>(PrivateTag{}, std::move(fields));
  if (event->json_.size() > limits.max_event_bytes) {
    return Status::invalid(too_large("event", event->json_.size(), limits.max_event_bytes));
  }
  return EventPtr(std::move(event));
}

std::string_view Event::id_hex() const noexcept {
  return std::string_view(json_).substr(kIdOffset, 64);
}

std::string_view Event::pubkey_hex() const noexcept {
  return std::string_view(json_).substr(kPubkeyOffset, 64);
}

std::string_view Event::sig_hex() const noexcept {
  return std::string_view(json_).substr(json_.size() - 2 - 128, 128);
}

void Event::append_commitment_head(std::string& out) const {
  out.append("[0,\"");
  out.append(pubkey_hex());
  out.append("\",");
  json::append_int(out, fields_.created_at);
  out.push_back(',');
  json::append_uint(out, fields_.kind);
  out.push_back(',');
}

std::string_view Event::tags_json() const noexcept {
  return std::string_view(json_).substr(tags_begin_, tags_end_ - tags_begin_);
}

std::string_view Event::content_json() const noexcept {
  const std::size_t content_begin = tags_end_ + kContentKey.size();
  return std::string_view(json_).substr(content_begin, content_end_ - content_begin);
}

std::string Event::commitment() const {
  std::string out;
  out.reserve(json_.size());
  append_commitment_head(out);
  out.append(tags_json());
  out.push_back(',');
  out.append(content_json());
  out.push_back(']');
  return out;
}

EventId Event::compute_id() const {
  // The commitment's tags and content are byte-identical to the canonical JSON's, so they are
  // hashed in place; only the short head is built.
  std::string head;
  head.reserve(128);
  append_commitment_head(head);

  thread_local crypto::Sha256 hasher;
  hasher.reset();
  hasher.update(head);
  hasher.update(tags_json());
  hasher.update(",");
  hasher.update(content_json());
  hasher.update("]");
  return hasher.finish();
}

Status Event::check_id() const {
  if (compute_id() != fields_.id) return Status::invalid("event id does not match its content");
  return Status::ok();
}

Status Event::verify_signature() const {
  if (!verify_schnorr(fields_.pubkey, fields_.sig, fields_.id.data(), fields_.id.size())) {
    return Status::invalid("bad signature");
  }
  return Status::ok();
}

Status Event::verify() const {
  if (Status s = check_id(); !s) return s;
  return verify_signature();
}

std::optional<std::string_view> Event::first_tag_value(std::string_view name) const noexcept {
  for (const Tag& tag : fields_.tags) {
    if (tag.size() >= 2 && tag[0] == name) return std::string_view(tag[1]);
  }
  return std::nullopt;
}

std::string_view Event::d_tag() const noexcept { return first_tag_value("d").value_or(""); }

}  // namespace relaycore
