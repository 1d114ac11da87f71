#include "redis/redis_url.hpp"

#include <charconv>

namespace relaycore::redis {
namespace {

constexpr std::string_view kScheme = "redis://";

// A decimal in [0, max], all digits.
bool parse_number(std::string_view text, int max, int& out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && out >= 0 && out <= max;
}

}  // namespace

Result<RedisAddress> parse_redis_url(std::string_view url) {
  const Status bad = Status::error("redis URL must look like redis://host:port/db");
  if (!url.starts_with(kScheme)) return bad;
  std::string_view rest = url.substr(kScheme.size());
  RedisAddress address;
  if (std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (!parse_number(rest.substr(slash + 1), 1 << 20, address.db)) return bad;
    rest = rest.substr(0, slash);
  }
  std::string_view host = rest;
  std::string_view port;
  if (rest.starts_with('[')) {
    std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad;
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return bad;
      port = after.substr(1);
    }
  } else if (std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  // No user info (passwords are not supported) and no stray brackets or spaces.
  const bool bracketed = rest.starts_with('[');
  if (host.empty() || (!bracketed && host.find_first_of("@[] ") != std::string_view::npos)) {
    return bad;
  }
  if (!port.empty() || rest.ends_with(':')) {
    if (!parse_number(port, 65535, address.port) || address.port == 0) return bad;
  }
  address.host = std::string(host);
  return address;
}

}  // namespace relaycore::redis
