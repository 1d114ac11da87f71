// Client addresses as the rate limiter sees them: the IP of a "host:port" string, and the
// prefixes of an allow list.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "relaycore/status.hpp"

namespace relaycore::pipeline {

// An IP address as 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so that one
// comparison serves both families and a mapped address equals its IPv4 form.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;

  // Zeroes every bit after the first `bits` (of the 128).
  void mask(std::uint32_t bits) noexcept;
};

// The IP of "203.0.113.7:5555", "[2001:db8::1]:5555", "203.0.113.7" or "2001:db8::1" (a zone
// such as "%eth0" is dropped); nullopt for anything else ("stdio", "", a host name).
std::optional<IpAddress> parse_ip(std::string_view address) noexcept;

// An address prefix: "10.0.0.0/8", "2001:db8::/32", or one address ("203.0.113.7").
struct IpPrefix {
  IpAddress address;  // masked to `bits`
  std::uint32_t bits = 128;

  bool contains(const IpAddress& ip) const noexcept;
};

// "invalid: ..." for text that is not an address, with or without a "/bits" suffix in range.
Result<IpPrefix> parse_ip_prefix(std::string_view text);

// True when a prefix in `prefixes` contains `ip`.
bool contains(const std::vector<IpPrefix>& prefixes, const IpAddress& ip) noexcept;

// The client's IP: the peer's (`remote_address`), or, when the peer is one of
// `trusted_proxies`, the address the outermost trusted proxy saw in `forwarded_for` (a
// comma-separated list, client first): the rightmost entry that is not itself a trusted proxy.
// An entry that is not an IP ends the walk at the proxy to its right. nullopt when the peer is
// not an IP.
std::optional<IpAddress> client_ip(const std::vector<IpPrefix>& trusted_proxies,
                                   std::string_view remote_address,
                                   std::string_view forwarded_for) noexcept;

}  // namespace relaycore::pipeline
