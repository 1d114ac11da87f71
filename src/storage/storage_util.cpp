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
namespace {

char fold(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// The canonical writer puts content between these two keys and nothing after the signature
// but its closing quote and brace, so the content's escaped text sits at fixed anchors.
constexpr std::string_view kContentKey = ",\"content\":\"";
constexpr std::string_view kSigKey = "\",\"sig\":\"";
constexpr std::size_t kSigTail = 128 + 2;  // 64 bytes of hex, the closing quote and brace

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Decodes the escaped content between the anchors. The writer only emits the short escapes and
// \u00xx for other C0 controls, so that is all this needs to undo.
void unescape_into(std::string_view escaped, std::string& out) {
  out.clear();
  out.reserve(escaped.size());
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    char c = escaped[i];
    if (c != '\\' || i + 1 >= escaped.size()) {
      out.push_back(c);
      continue;
    }
    char e = escaped[++i];
    switch (e) {
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'u': {
        // Always \u00xx here: the writer escapes nothing above 0x1f this way.
        int value = 0;
        bool ok = i + 4 < escaped.size();
        for (std::size_t k = 1; ok && k <= 4; ++k) {
          int digit = hex_value(escaped[i + k]);
          ok = digit >= 0;
          value = value * 16 + digit;
        }
        if (ok && value <= 0xff) {
          out.push_back(static_cast<char>(value));
          i += 4;
        }
        break;
      }
      default:  // '"', '\\' and '/' stand for themselves
        out.push_back(e);
        break;
    }
  }
}

}  // namespace

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

bool content_contains(std::string_view content, std::string_view needle) noexcept {
  if (needle.empty()) return true;
  auto it = std::search(content.begin(), content.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return fold(a) == fold(b); });
  return it != content.end();
}

bool json_content_contains(std::string_view event_json, std::string_view needle) {
  std::size_t begin = event_json.find(kContentKey);
  if (begin == std::string_view::npos) return false;
  begin += kContentKey.size();
  if (event_json.size() < begin + kSigKey.size() + kSigTail) return false;
  std::size_t end = event_json.size() - kSigTail - kSigKey.size();
  if (event_json.substr(end, kSigKey.size()) != kSigKey) return false;
  thread_local std::string content;
  unescape_into(event_json.substr(begin, end - begin), content);
  return content_contains(content, needle);
}

const Limits& trusted_limits() noexcept {
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

Status newer_version_status() { return Status::duplicate("have a newer version of this event"); }

Status ephemeral_status() { return Status::invalid("ephemeral events are not stored"); }

void set_outcome(WriteResult& result, WriteOutcome outcome, Status status) {
  result.outcome = outcome;
  result.status = std::move(status);
  result.seq = 0;
  result.removed.clear();
}

}  // namespace relaycore::storage
