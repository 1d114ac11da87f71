#include "relaycore/event.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <charconv>
#include <cstring>
#include <string>

#include "crypto/sha256.hpp"
#include "protocol/json_writer.hpp"

namespace relaycore {
namespace {

// Fixed positions in the canonical form {"id":"<64>","pubkey":"<64>",...,"sig":"<128>"}.
constexpr std::size_t kIdOffset = 7;                        // after {"id":"
constexpr std::size_t kPubkeyOffset = kIdOffset + 64 + 12;  // after ","pubkey":"
constexpr std::string_view kContentKey = ",\"content\":";
constexpr std::string_view kSigKey = ",\"sig\":";

// Pure ASCII, checked a word at a time. Tag values are mostly hex and short, where a call into
// simdjson's dispatched validator costs more than the check itself.
bool is_ascii(std::string_view s) noexcept {
  constexpr std::uint64_t kHighBits = 0x8080808080808080ull;
  std::size_t i = 0;
  std::uint64_t acc = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, sizeof(w));
    acc |= w;
  }
  for (; i < s.size(); ++i) acc |= static_cast<unsigned char>(s[i]);
  return (acc & kHighBits) == 0;
}

bool valid_utf8(std::string_view s) noexcept {
  return is_ascii(s) || simdjson::validate_utf8(s.data(), s.size());
}

std::string too_large(std::string_view what, std::size_t size, std::size_t max) {
  return fmt::format("{} is too large ({} bytes, max {})", what, size, max);
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
    return Status::invalid(
        fmt::format("too many tags ({}, max {})", f.tags.size(), limits.max_event_tags));
  }
  for (std::size_t i = 0; i < f.tags.size(); ++i) {
    const Tag& tag = f.tags[i];
    if (tag.empty()) return Status::invalid(fmt::format("tag {} is empty", i));
    if (tag.size() > limits.max_tag_strings) {
      return Status::invalid(fmt::format("tag {} has too many values ({}, max {})", i, tag.size(),
                                         limits.max_tag_strings));
    }
    for (const std::string& value : tag) {
      if (value.size() > limits.max_tag_value_bytes) {
        return Status::invalid(
            too_large(fmt::format("tag {} value", i), value.size(), limits.max_tag_value_bytes));
      }
      if (!valid_utf8(value)) {
        return Status::invalid(fmt::format("tag {} is not valid UTF-8", i));
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

// Room for "[0,\"<64 hex>\",<int64>,<uint16>," with the longest numbers.
constexpr std::size_t kCommitmentHeadMax = 4 + 64 + 2 + 20 + 1 + 5 + 1;

// Writes the commitment head "[0,\"<pubkey>\",<created_at>,<kind>," to `out` (at least
// kCommitmentHeadMax bytes) and returns its length. Built without std::string, since compute_id
// runs for every event received.
std::size_t write_commitment_head(char* out, std::string_view pubkey_hex, std::int64_t created_at,
                                  std::uint16_t kind) noexcept {
  char* const limit = out + kCommitmentHeadMax;
  char* p = out;
  std::memcpy(p, "[0,\"", 4);
  p += 4;
  std::memcpy(p, pubkey_hex.data(), 64);
  p += 64;
  std::memcpy(p, "\",", 2);
  p += 2;
  p = std::to_chars(p, limit, created_at).ptr;
  *p++ = ',';
  p = std::to_chars(p, limit, kind).ptr;
  *p++ = ',';
  return static_cast<std::size_t>(p - out);
}

// {"id":"<hex>","pubkey":"<hex>","created_at":<n>,"kind":<n>,"tags": : the canonical JSON
// before the tags.
void append_head(std::string& out, const EventFields& f) {
  out.append("{\"id\":");
  json::append_hex_string(out, f.id.data(), f.id.size());
  out.append(",\"pubkey\":");
  json::append_hex_string(out, f.pubkey.data(), f.pubkey.size());
  out.append(",\"created_at\":");
  json::append_int(out, f.created_at);
  out.append(",\"kind\":");
  json::append_uint(out, f.kind);
  out.append(",\"tags\":");
}

// ,"sig":"<hex>"} : the canonical JSON after the content.
void append_tail(std::string& out, const EventFields& f) {
  out.append(kSigKey);
  json::append_hex_string(out, f.sig.data(), f.sig.size());
  out.push_back('}');
}

}  // namespace

KindClass kind_class(std::uint16_t kind) noexcept {
  if (kind == 0 || kind == 3 || (kind >= 10000 && kind < 20000)) return KindClass::kReplaceable;
  if (kind >= 20000 && kind < 30000) return KindClass::kEphemeral;
  if (kind >= 30000 && kind < 40000) return KindClass::kAddressable;
  return KindClass::kRegular;
}

Event::Event(Passkey, EventFields&& fields) : fields_(std::move(fields)) {
  build_json();
  expiration_ = parse_expiration(fields_.tags);
}

Event::Event(Passkey, EventFields&& fields, std::string&& stored) : fields_(std::move(fields)) {
  if (!adopt_json(stored)) build_json();
  expiration_ = parse_expiration(fields_.tags);
}

void Event::build_json() {
  const std::size_t estimate = 200 + tags_size(fields_.tags) + json::quoted_size(fields_.content);
  json_.reserve(estimate);
  append_head(json_, fields_);
  tags_begin_ = static_cast<std::uint32_t>(json_.size());
  append_tags(json_, fields_.tags);
  tags_end_ = static_cast<std::uint32_t>(json_.size());
  json_.append(kContentKey);
  json::append_string(json_, fields_.content);
  content_end_ = static_cast<std::uint32_t>(json_.size());
  append_tail(json_, fields_);
}

bool Event::adopt_json(std::string& stored) {
  // The head and tail are short; one buffer per thread holds each in turn.
  thread_local std::string expected;
  expected.clear();
  append_head(expected, fields_);
  if (!std::string_view(stored).starts_with(expected)) return false;
  const std::size_t tags_begin = expected.size();
  expected.clear();
  append_tail(expected, fields_);
  if (stored.size() < tags_begin + expected.size() ||
      !std::string_view(stored).ends_with(expected)) {
    return false;
  }
  const std::size_t content_end = stored.size() - expected.size();
  const std::size_t tags_end = tags_begin + tags_size(fields_.tags);
  if (tags_end + kContentKey.size() + json::quoted_size(fields_.content) != content_end ||
      std::string_view(stored).substr(tags_end, kContentKey.size()) != kContentKey) {
    return false;
  }
  json_ = std::move(stored);
  tags_begin_ = static_cast<std::uint32_t>(tags_begin);
  tags_end_ = static_cast<std::uint32_t>(tags_end);
  content_end_ = static_cast<std::uint32_t>(content_end);
  return true;
}

Result<EventPtr> Event::create(EventFields&& fields, const Limits& limits) {
  if (Status s = check_fields(fields, limits); !s) return s;
  auto event = std::make_shared<const Event>(Passkey(), std::move(fields));
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
  char head[kCommitmentHeadMax];
  out.append(head, write_commitment_head(head, pubkey_hex(), fields_.created_at, fields_.kind));
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
  // hashed in place; only the short head is built, on the stack.
  char head[kCommitmentHeadMax];
  const std::size_t head_size =
      write_commitment_head(head, pubkey_hex(), fields_.created_at, fields_.kind);

  thread_local crypto::Sha256 hasher;
  hasher.reset();
  hasher.update(head, head_size);
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
