// The rate limiter behind reverse proxies: whose address a forwarded request is counted
// against, and which forwarding headers are believed.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "rate_limit_test_util.hpp"
#include "relaycore/rate_limit.hpp"

using namespace relaycore;
using namespace relaycore::test;

namespace {

ClientInfo forwarded(std::string peer, std::string forwarded_for) {
  ClientInfo c = client(std::move(peer));
  c.forwarded_for = std::move(forwarded_for);
  return c;
}

// Limits of 2 EVENTs per address, trusting the proxies in 10.0.0.0/8.
RateLimits behind_proxies() {
  RateLimits l = no_limits();
  l.per_ip.event = {1, 2};
  l.trusted_proxies = {"10.0.0.0/8"};
  return l;
}

}  // namespace

TEST_CASE("Rate limits: behind a trusted proxy, each forwarded client has its own bucket",
          "[rate_limit]") {
  FakeClock clock;
  auto rl = limiter(behind_proxies(), clock);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:5555", "203.0.113.7"), 10) == 2);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:5556", "203.0.113.8"), 10) == 2);
  // The same client through another proxy, with a port, spaces, or behind a second proxy.
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.9.9.9:1", " 203.0.113.7:443 "), 10) == 0);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "203.0.113.7, 10.0.0.3"), 10) == 0);
  // Entries left of the client's are the client's own to write, and are not believed.
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "198.51.100.1, 203.0.113.7"), 10) == 0);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "198.51.100.1"), 10) == 2);
  // IPv6 clients keep their /64 grouping.
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "[2001:db8:1:2::1]:80"), 10) == 2);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "2001:db8:1:2::9"), 10) == 0);
  // The proxy's own requests, and those it cannot name a client for, are the proxy's.
  CHECK(allowed(*rl, Verb::kEvent, client("10.0.0.2:9"), 10) == 2);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:9", "203.0.113.9, unknown"), 10) == 0);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:9", ""), 10) == 0);
  // Every hop a trusted proxy: the first one is the client.
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:9", "10.0.0.7, 10.0.0.3"), 10) == 2);
}

TEST_CASE("Rate limits: a forwarding header from a peer that is not a trusted proxy is ignored",
          "[rate_limit]") {
  FakeClock clock;
  SECTION("an untrusted peer") {
    auto rl = limiter(behind_proxies(), clock);
    CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.50:1"), 10) == 2);
    CHECK(allowed(*rl, Verb::kEvent, forwarded("203.0.113.50:2", "198.51.100.1"), 10) == 0);
    CHECK(allowed(*rl, Verb::kEvent, forwarded("203.0.113.50:3", "10.0.0.2"), 10) == 0);
  }
  SECTION("no trusted proxies") {
    RateLimits l = behind_proxies();
    l.trusted_proxies.clear();
    auto rl = limiter(l, clock);
    CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "203.0.113.7"), 10) == 2);
    CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:2", "203.0.113.8"), 10) == 0);
  }
}

TEST_CASE("Rate limits: exemptions and the connection cap apply to the forwarded client",
          "[rate_limit]") {
  FakeClock clock;
  RateLimits l = behind_proxies();
  l.trusted_proxies = {"127.0.0.1"};
  l.exempt_ips = {"127.0.0.0/8", "192.0.2.0/24"};
  l.max_connections_per_ip = 1;
  auto rl = limiter(l, clock);
  // The proxy on loopback is exempt itself; the clients it forwards are not, unless theirs is.
  CHECK(allowed(*rl, Verb::kEvent, client("127.0.0.1:1"), 100) == 100);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("127.0.0.1:2", "203.0.113.7"), 10) == 2);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("127.0.0.1:3", "192.0.2.1"), 100) == 100);

  Result<ConnectionSlot> a = rl->open_connection(forwarded("127.0.0.1:4", "203.0.113.7"));
  REQUIRE(a.is_ok());
  CHECK(a->counted());
  Result<ConnectionSlot> b = rl->open_connection(forwarded("127.0.0.1:5", "203.0.113.8"));
  REQUIRE(b.is_ok());
  CHECK(b->counted());
  Result<ConnectionSlot> again = rl->open_connection(forwarded("127.0.0.1:6", "203.0.113.7"));
  REQUIRE_FALSE(again.is_ok());
  CHECK(again.error().message() == "rate-limited: too many connections from this address");
  Result<ConnectionSlot> exempt = rl->open_connection(forwarded("127.0.0.1:7", "192.0.2.1"));
  REQUIRE(exempt.is_ok());
  CHECK_FALSE(exempt->counted());
}

TEST_CASE("Rate limits: trusted proxies are checked when made and can be changed live",
          "[rate_limit]") {
  for (const char* bad : {"proxy.example", "10.0.0.0/33", "", "10.0.0.1:80"}) {
    INFO(bad);
    RateLimits l;
    l.trusted_proxies = {bad};
    Result<std::shared_ptr<RateLimiter>> r = new_rate_limiter(l);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.error().code() == StatusCode::kInvalid);
  }
  FakeClock clock;
  RateLimits l = behind_proxies();
  l.trusted_proxies.clear();
  auto rl = limiter(l, clock);
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "203.0.113.7"), 10) == 2);
  l.trusted_proxies = {"10.0.0.2"};
  REQUIRE(rl->reconfigure(l).is_ok());
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "203.0.113.7"), 10) == 2);
  l.trusted_proxies = {"10.0.0.2/40"};
  CHECK(rl->reconfigure(l).code() == StatusCode::kInvalid);
  // The refused change left the proxy trusted.
  CHECK(allowed(*rl, Verb::kEvent, forwarded("10.0.0.2:1", "203.0.113.8"), 10) == 2);
}
