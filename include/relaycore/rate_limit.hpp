// Rate limits: token buckets per client address and per authenticated pubkey for EVENT, REQ and
// COUNT, and a cap on open connections per address. A refused request is answered with a
// "rate-limited:" status, as NIP-01 asks. docs/limits.md lists every limit and what a client
// sees when it hits one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "relaycore/connection.hpp"
#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/message.hpp"
#include "relaycore/stats.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

// One token bucket: `per_second` tokens flow in each second, up to `burst`; each request takes
// one, and a request that finds the bucket empty is refused. A new client starts with a full
// bucket, so it may send `burst` requests at once and `per_second` a second after that.
struct RateLimit {
  // Tokens per second; fractions are allowed (1/60.0 is one a minute). 0 means unlimited.
  double per_second = 0;
  // The most tokens the bucket holds. 0 means ceil(per_second), at least 1.
  std::uint32_t burst = 0;

  bool limited() const noexcept { return per_second > 0; }
};

// A token bucket for each limited verb. AUTH and CLOSE are never limited: AUTH is one round
// trip per session, and CLOSE frees the relay's resources.
struct VerbLimits {
  RateLimit event;
  RateLimit req;
  RateLimit count;
};

// The rate limits a relay applies. The defaults are for a public relay: they leave room for
// any ordinary client (a client opens a few dozen subscriptions when it starts and publishes a
// handful of events a minute, or a few hundred when it republishes a backlog) and stop one
// address from taking a disproportionate share of the verifiers, readers and sockets.
struct RateLimits {
  // Per client address: IPv4 addresses one by one, IPv6 addresses by their first
  // `ipv6_prefix_bits` bits, so a host cannot escape the limit by rotating through the
  // addresses of its own network. The port is ignored. Clients with no address (Relay::submit)
  // are not limited per address.
  // Default: EVENT 20/s, burst 100 (a republished backlog of 100 events goes through at once);
  // REQ 20/s, burst 100 (a client's start-up subscriptions); COUNT 5/s, burst 20 (a COUNT
  // visits every matching event, as no limit bounds it).
  VerbLimits per_ip = {{20, 100}, {20, 100}, {5, 20}};

  // Per authenticated pubkey (NIP-42), on top of the per-address limits; a session
  // authenticated as several pubkeys is charged to each of them.
  // Default: unlimited. A pubkey costs nothing to make, so a pubkey limit does not stop a
  // flood (the per-address limit does); it is for hosts that give each known user a quota
  // across all their addresses, and those choose the quota.
  VerbLimits per_pubkey;

  // Most open connections from one address (with the same IPv6 grouping). 0 means unlimited.
  // Default: 100: several devices behind one NAT each keep a few connections, and many
  // clients hold one per relay.
  std::uint32_t max_connections_per_ip = 100;

  // Bits of an IPv6 address that name a client, 1 to 128.
  // Default: 64, the smallest network ISPs hand out.
  std::uint32_t ipv6_prefix_bits = 64;

  // Addresses never limited, as "203.0.113.7", "2001:db8::1" or a CIDR prefix such as
  // "10.0.0.0/8" or "2001:db8::/32".
  // Default: loopback (127.0.0.0/8 and ::1). That is the host itself, or a reverse proxy on the
  // same machine, behind which every client has the proxy's address and one per-address bucket
  // would throttle them all together.
  std::vector<std::string> exempt_ips = {"127.0.0.0/8", "::1"};

  // Reverse proxies whose forwarding header names the client, as addresses or CIDR prefixes
  // like exempt_ips. When a client's remote_address is one of them, the client is the nearest
  // address in ClientInfo::forwarded_for, read from the right, that is not one of them: that is
  // the address the outermost trusted proxy saw, and entries left of it, which the client
  // may have written itself, are ignored. Limits, exemptions and the connection cap then apply
  // to that address. An entry that is not an IP stops the walk at the proxy that wrote it.
  // Default: none (forwarding headers are ignored).
  std::vector<std::string> trusted_proxies;

  // Pubkeys never limited once a session has authenticated as one of them (NIP-42).
  // Default: none.
  std::vector<Pubkey> exempt_pubkeys;

  // Exempts any client for which it returns true, e.g. one on the host's allow list. Called
  // on every limited request from several threads at once, so it must be fast and
  // thread-safe; if it throws, the client is not exempt.
  // Default: none.
  std::function<bool(const ClientInfo&)> exempt;

  // Most addresses and pubkeys with a bucket in memory. A full bucket holds nothing a new one
  // would not, so those are forgotten first; under a flood of more distinct keys than this, the
  // fullest buckets go next, and their keys start again with a full burst.
  // Values under 16 count as 16.
  // Default: 65536 (a few MiB).
  std::size_t max_tracked_keys = 65536;
};

// The time source of a rate limiter; tests pass a fake one.
using RateLimitClock = std::function<std::chrono::steady_clock::time_point()>;

// A connection counted against the per-address cap until release() or destruction. An empty
// slot (exempt client, no cap) releases nothing.
class RELAYCORE_API ConnectionSlot {
 public:
  ConnectionSlot() = default;
  // For RateLimiter implementations: `release` runs once, when the slot is released.
  explicit ConnectionSlot(std::function<void()> release) : release_(std::move(release)) {}
  ConnectionSlot(ConnectionSlot&& other) noexcept;
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() { release(); }

  // Gives the slot back; later calls do nothing.
  void release() noexcept;
  // True until released, for a slot that counts against a cap.
  bool counted() const noexcept { return static_cast<bool>(release_); }

 private:
  std::function<void()> release_;
};

// [Threading] Every method is called from many threads at once (allow() on every EVENT, REQ
//   and COUNT), and a ConnectionSlot may be released on any thread.
// [Blocking] Methods do not block beyond brief internal locks; allow() is on the ingest path.
// [Ownership] The ClientInfo is borrowed for the call. A ConnectionSlot may outlive its
//   limiter.
// [Errors] Refusals are "rate-limited: ..." statuses; nothing throws.
class RELAYCORE_API RateLimiter {
 public:
  virtual ~RateLimiter() = default;

  // Takes a token for `verb` from the client's buckets: OK, or "rate-limited: ..." when one
  // is empty (and then no bucket is charged). Verbs other than EVENT, REQ and COUNT, and
  // exempt clients, are always allowed.
  virtual Status allow(Verb verb, const ClientInfo& client) = 0;

  // Counts a new connection from the client's address: a slot to hold while it is open, or
  // "rate-limited: ..." when the address is at its cap.
  virtual Result<ConnectionSlot> open_connection(const ClientInfo& client) = 0;

  // Refusals since the limiter was made, and the keys it tracks now.
  virtual RateLimitStats stats() const = 0;

  // Takes new rates, exemptions, trusted proxies and connection cap while clients keep their
  // buckets and open connections (a lower cap refuses new connections only). ipv6_prefix_bits
  // and max_tracked_keys stay as they were made. "invalid: ..." and no change for a bad rate,
  // exempt address or trusted proxy. The built-in limiter keeps every configuration it was
  // given until it is destroyed, so that allow() takes no shared lock.
  virtual Status reconfigure(const RateLimits& limits) = 0;
};

// The built-in limiter. `clock` defaults to std::chrono::steady_clock::now; it is called from
// several threads at once. Fails with "invalid: ..." for a negative or non-finite rate, an
// IPv6 prefix outside 1 to 128, or an exempt address or trusted proxy that does not parse.
RELAYCORE_API Result<std::shared_ptr<RateLimiter>> new_rate_limiter(const RateLimits& limits,
                                                                    RateLimitClock clock = {});

// Reads a rate as "20/s", "1200/m", "100/h", a bare number (per second) or "off" (0,
// unlimited), and returns it per second; "invalid: ..." otherwise. For configuration files and
// command lines.
RELAYCORE_API Result<double> parse_rate(std::string_view text);

}  // namespace relaycore
