#include "pipeline/client_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <string>

#include "util/text.hpp"

namespace relaycore::pipeline {
namespace {

// IPv4 addresses sit in the last 32 of the 128 bits.
constexpr std::uint32_t kV4Offset = 96;
// The longest IPv6 text inet_pton reads ("ffff:...:255.255.255.255").
constexpr std::size_t kMaxIpText = 45;

// An address without brackets, port or zone.
std::optional<IpAddress> parse_bare_ip(std::string_view host) noexcept {
  if (std::size_t zone = host.find('%'); zone != std::string_view::npos) {
    host = host.substr(0, zone);
  }
  if (host.empty() || host.size() > kMaxIpText) return std::nullopt;
  char text[kMaxIpText + 1];
  std::memcpy(text, host.data(), host.size());
  text[host.size()] = '\0';
  IpAddress ip;
  if (inet_pton(AF_INET, text, ip.bytes.data() + 12) == 1) {
    ip.bytes[10] = ip.bytes[11] = 0xff;
    ip.v4 = true;
    return ip;
  }
  if (inet_pton(AF_INET6, text, ip.bytes.data()) != 1) return std::nullopt;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  ip.v4 = std::memcmp(ip.bytes.data(), kMapped, sizeof kMapped) == 0;
  return ip;
}

}  // namespace

void IpAddress::mask(std::uint32_t bits) noexcept {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const std::uint32_t start = static_cast<std::uint32_t>(i) * 8;
    if (bits >= start + 8) continue;
    const std::uint32_t keep = bits > start ? bits - start : 0;
    bytes[i] &= static_cast<std::uint8_t>(0xff00u >> keep);
  }
}

std::optional<IpAddress> parse_ip(std::string_view address) noexcept {
  std::string_view host = address;
  if (!host.empty() && host.front() == '[') {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return std::nullopt;
    host = host.substr(1, close - 1);
  } else if (const std::size_t colon = host.find(':');
             colon != std::string_view::npos &&
             host.find(':', colon + 1) == std::string_view::npos) {
    // One colon: IPv4 with a port. More than one is a bare IPv6 address.
    host = host.substr(0, colon);
  }
  return parse_bare_ip(host);
}

bool IpPrefix::contains(const IpAddress& ip) const noexcept {
  IpAddress masked = ip;
  masked.mask(bits);
  return masked.bytes == address.bytes;
}

Result<IpPrefix> parse_ip_prefix(std::string_view text) {
  const std::size_t slash = text.find('/');
  std::optional<IpAddress> ip = parse_bare_ip(text.substr(0, slash));
  if (!ip) return Status::invalid("\"" + std::string(text) + "\" is not an IP address or prefix");
  IpPrefix prefix;
  const std::uint32_t width = ip->v4 ? 32 : 128;
  std::uint32_t bits = width;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
        bits > width) {
      return Status::invalid("\"" + std::string(text) + "\" has a prefix length outside 0 to " +
                             std::to_string(width));
    }
  }
  prefix.bits = ip->v4 ? kV4Offset + bits : bits;
  prefix.address = *ip;
  prefix.address.mask(prefix.bits);
  return prefix;
}

bool contains(const std::vector<IpPrefix>& prefixes, const IpAddress& ip) noexcept {
  for (const IpPrefix& prefix : prefixes) {
    if (prefix.contains(ip)) return true;
  }
  return false;
}

std::optional<IpAddress> client_ip(const std::vector<IpPrefix>& trusted_proxies,
                                   std::string_view remote_address,
                                   std::string_view forwarded_for) noexcept {
  std::optional<IpAddress> ip = parse_ip(remote_address);
  // Each step: `ip` is a trusted hop, and the entry left of it is who connected to it.
  while (ip && !forwarded_for.empty() && contains(trusted_proxies, *ip)) {
    const std::size_t comma = forwarded_for.rfind(',');
    const std::string_view entry =
        comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
    forwarded_for =
        comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    std::optional<IpAddress> hop = parse_ip(trim(entry));
    if (!hop) break;  // "unknown", a host name: the proxy's own address is all we know
    ip = hop;
  }
  return ip;
}

}  // namespace relaycore::pipeline
