// The built-in rate limiter under a fake clock: buckets, keys, exemptions, the connection cap
// and its settings; and the limiter as Relay::open builds it.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "rate_limit_test_util.hpp"
#include "relaycore/rate_limit.hpp"
#include "relaycore/relay.hpp"

using namespace relaycore;
using namespace relaycore::test;
using namespace std::chrono_literals;

TEST_CASE("Rate limits: a bucket allows its burst at once, then refills at its rate",
          "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {2, 5};
  auto rl = limiter(l, clock);
  const ClientInfo c = client("203.0.113.7:5555");
  CHECK(allowed(*rl, Verb::kEvent, c, 10) == 5);
  Status refused = rl->allow(Verb::kEvent, c);
  CHECK(refused.message() == "rate-limited: slow down: too many EVENTs from this address");
  clock.advance(499ms);
  CHECK(allowed(*rl, Verb::kEvent, c, 3) == 0);
  clock.advance(1ms);
  CHECK(allowed(*rl, Verb::kEvent, c, 3) == 1);
  clock.advance(2s);
  CHECK(allowed(*rl, Verb::kEvent, c, 10) == 4);
  // A long idle refills the bucket only up to its burst.
  clock.advance(1h);
  CHECK(allowed(*rl, Verb::kEvent, c, 10) == 5);
  CHECK(rl->stats().refused_event == 5 + 1 + 3 + 2 + 6 + 5);
}

TEST_CASE("Rate limits: burst 0 holds one second's worth, at least one token", "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {3, 0};
  l.per_ip.req = {0.5, 0};
  auto rl = limiter(l, clock);
  const ClientInfo c = client("203.0.113.7:1");
  CHECK(allowed(*rl, Verb::kEvent, c, 10) == 3);
  CHECK(allowed(*rl, Verb::kReq, c, 10) == 1);
  clock.advance(1s);
  CHECK(allowed(*rl, Verb::kReq, c, 10) == 0);
  clock.advance(1s);
  CHECK(allowed(*rl, Verb::kReq, c, 10) == 1);
}

TEST_CASE("Rate limits: EVENT, REQ and COUNT have separate buckets, CLOSE and AUTH have none",
          "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {1, 2};
  l.per_ip.req = {1, 3};
  auto rl = limiter(l, clock);
  const ClientInfo c = client("203.0.113.7:1");
  CHECK(allowed(*rl, Verb::kEvent, c, 10) == 2);
  CHECK(allowed(*rl, Verb::kReq, c, 10) == 3);
  // COUNT has rate 0: unlimited.
  CHECK(allowed(*rl, Verb::kCount, c, 1000) == 1000);
  CHECK(allowed(*rl, Verb::kClose, c, 1000) == 1000);
  CHECK(allowed(*rl, Verb::kAuth, c, 1000) == 1000);
  const RateLimitStats s = rl->stats();
  CHECK(s.refused_event == 8);
  CHECK(s.refused_req == 7);
  CHECK(s.refused_count == 0);
  Status refused = rl->allow(Verb::kReq, c);
  CHECK(refused.message() == "rate-limited: slow down: too many REQs from this address");
}

TEST_CASE("Rate limits: an IPv4 client is its address, whatever the port", "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {1, 3};
  auto rl = limiter(l, clock);
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:5555"), 10) == 3);
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:6666"), 1) == 0);
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7"), 1) == 0);
  CHECK(allowed(*rl, Verb::kEvent, client("[::ffff:203.0.113.7]:80"), 1) == 0);
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.8:5555"), 10) == 3);
  CHECK(allowed(*rl, Verb::kEvent, client("198.51.100.7:5555"), 10) == 3);
}

TEST_CASE("Rate limits: IPv6 clients are grouped by their /64 unless told otherwise",
          "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {1, 3};
  SECTION("/64 by default") {
    auto rl = limiter(l, clock);
    CHECK(allowed(*rl, Verb::kEvent, client("[2001:db8:1:2::1]:5555"), 10) == 3);
    CHECK(allowed(*rl, Verb::kEvent, client("[2001:db8:1:2:ffff::9]:1"), 1) == 0);
    CHECK(allowed(*rl, Verb::kEvent, client("2001:db8:1:2::77"), 1) == 0);
    CHECK(allowed(*rl, Verb::kEvent, client("[fe80::1%eth0]:1"), 10) == 3);
    CHECK(allowed(*rl, Verb::kEvent, client("[2001:db8:1:3::1]:5555"), 10) == 3);
  }
  SECTION("/128") {
    l.ipv6_prefix_bits = 128;
    auto rl = limiter(l, clock);
    CHECK(allowed(*rl, Verb::kEvent, client("[2001:db8:1:2::1]:5555"), 10) == 3);
    CHECK(allowed(*rl, Verb::kEvent, client("[2001:db8:1:2::1]:6666"), 1) == 0);
    CHECK(allowed(*rl, Verb::kEvent, client("[2001:db8:1:2::2]:5555"), 10) == 3);
  }
}

TEST_CASE("Rate limits: an address that is not an IP is limited as itself", "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {1, 2};
  auto rl = limiter(l, clock);
  CHECK(allowed(*rl, Verb::kEvent, client("stdio"), 10) == 2);
  CHECK(allowed(*rl, Verb::kEvent, client("bench"), 10) == 2);
  // No address at all (Relay::submit): nothing to key on, so no per-address limit.
  CHECK(allowed(*rl, Verb::kEvent, client(""), 100) == 100);
}

TEST_CASE("Rate limits: a pubkey bucket follows the pubkey across addresses", "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_pubkey.event = {1, 3};
  auto rl = limiter(l, clock);
  const Pubkey a = pubkey(0xaa), b = pubkey(0xbb);
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:1", {a}), 10) == 3);
  CHECK(allowed(*rl, Verb::kEvent, client("198.51.100.9:1", {a}), 10) == 0);
  Status refused = rl->allow(Verb::kEvent, client("198.51.100.9:1", {a}));
  CHECK(refused.message() == "rate-limited: slow down: too many EVENTs for this pubkey");
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:1", {b}), 10) == 3);
  // Unauthenticated clients have no pubkey bucket (and the per-address limit is off here).
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:1"), 100) == 100);
  // A session authenticated as several pubkeys is charged to each.
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:1", {pubkey(0xcc), a}), 10) == 0);
}

TEST_CASE("Rate limits: a request refused by one bucket takes no token from the others",
          "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {1, 3};
  l.per_pubkey.event = {1, 1};
  auto rl = limiter(l, clock);
  const Pubkey a = pubkey(0xaa), b = pubkey(0xbb);
  // One allowed (address 2 left, a empty), then refused by a, many times.
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:1", {a}), 10) == 1);
  // b has its token but a does not: refused, and b keeps it.
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:1", {b, a}), 10) == 0);
  CHECK(allowed(*rl, Verb::kEvent, client("198.51.100.9:1", {b}), 10) == 1);
  // The address still has the two tokens the refusals did not take.
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:1"), 10) == 2);
}

TEST_CASE("Rate limits: exempt addresses, pubkeys and clients are never limited", "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip = {{1, 1}, {1, 1}, {1, 1}};
  l.per_pubkey = {{1, 1}, {1, 1}, {1, 1}};
  l.max_connections_per_ip = 1;
  l.exempt_ips = {"198.51.100.0/24", "2001:db8:ff::/48", "192.0.2.1"};
  const Pubkey trusted = pubkey(0x11);
  l.exempt_pubkeys = {pubkey(0x22), trusted};
  l.exempt = [](const ClientInfo& c) {
    if (c.remote_address == "203.0.113.66:1") throw std::runtime_error("host bug");
    return c.remote_address == "203.0.113.99:1";
  };
  auto rl = limiter(l, clock);
  const ClientInfo exempt[] = {
      client("198.51.100.200:1"), client("[2001:db8:ff:1234::1]:1"),
      client("192.0.2.1:9"),      client("203.0.113.7:1", {pubkey(0x33), trusted}),
      client("203.0.113.99:1"),
  };
  for (const ClientInfo& c : exempt) {
    INFO(c.remote_address);
    for (Verb v : {Verb::kEvent, Verb::kReq, Verb::kCount}) CHECK(allowed(*rl, v, c, 50) == 50);
    std::vector<ConnectionSlot> slots;
    for (int i = 0; i < 5; ++i) {
      Result<ConnectionSlot> slot = rl->open_connection(c);
      REQUIRE(slot.is_ok());
      CHECK_FALSE(slot->counted());
      slots.push_back(std::move(slot).value());
    }
  }
  const ClientInfo limited[] = {client("198.51.101.1:1"), client("[2001:db8:fe::1]:1"),
                                client("192.0.2.2:1"), client("203.0.113.8:1", {pubkey(0x33)}),
                                client("203.0.113.66:1")};
  for (const ClientInfo& c : limited) {
    INFO(c.remote_address);
    CHECK(allowed(*rl, Verb::kEvent, c, 50) == 1);
  }
}

TEST_CASE("Rate limits: loopback is exempt by default, other addresses are limited",
          "[rate_limit]") {
  FakeClock clock;
  auto rl = limiter(RateLimits(), clock);
  CHECK(allowed(*rl, Verb::kEvent, client("127.0.0.1:1"), 1000) == 1000);
  CHECK(allowed(*rl, Verb::kEvent, client("[::1]:1"), 1000) == 1000);
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.7:1"), 1000) == 100);
  CHECK(allowed(*rl, Verb::kReq, client("203.0.113.7:1"), 1000) == 100);
  CHECK(allowed(*rl, Verb::kCount, client("203.0.113.7:1"), 1000) == 20);
  // Per pubkey is off by default.
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.8:1", {pubkey(1)}), 1000) == 100);
  CHECK(allowed(*rl, Verb::kEvent, client("203.0.113.9:1", {pubkey(1)}), 1000) == 100);
}

TEST_CASE("Rate limits: connections per address are capped until their slots are released",
          "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.max_connections_per_ip = 2;
  auto rl = limiter(l, clock);
  auto open = [&](const std::string& address) { return rl->open_connection(client(address)); };

  Result<ConnectionSlot> a = open("203.0.113.7:1");
  Result<ConnectionSlot> b = open("203.0.113.7:2");
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  CHECK(a->counted());
  Result<ConnectionSlot> c = open("203.0.113.7:3");
  REQUIRE_FALSE(c.is_ok());
  CHECK(c.error().message() == "rate-limited: too many connections from this address");
  CHECK(open("[::ffff:203.0.113.7]:4").is_ok() == false);
  CHECK(open("203.0.113.8:1").is_ok());
  CHECK(open("[2001:db8::1]:1").is_ok());
  CHECK(rl->stats().refused_connections == 2);

  // Releasing one frees one place; a second release of the same slot frees nothing.
  a->release();
  CHECK_FALSE(a->counted());
  a->release();
  Result<ConnectionSlot> d = open("203.0.113.7:4");
  REQUIRE(d.is_ok());
  CHECK_FALSE(open("203.0.113.7:5").is_ok());

  // A moved slot is released once, by its new owner; destruction releases.
  ConnectionSlot moved = std::move(b).value();
  { ConnectionSlot gone = std::move(moved); }
  Result<ConnectionSlot> e = open("203.0.113.7:6");
  REQUIRE(e.is_ok());
  CHECK_FALSE(open("203.0.113.7:7").is_ok());

  // Move assignment releases what the target held.
  *d = std::move(e).value();
  Result<ConnectionSlot> f = open("203.0.113.7:8");
  CHECK(f.is_ok());
  CHECK_FALSE(open("203.0.113.7:9").is_ok());

  // A slot may outlive its limiter.
  rl.reset();
  f->release();
  d->release();
}

TEST_CASE("Rate limits: no cap means uncounted slots", "[rate_limit]") {
  FakeClock clock;
  auto rl = limiter(no_limits(), clock);
  for (int i = 0; i < 1000; ++i) {
    Result<ConnectionSlot> slot = rl->open_connection(client("203.0.113.7:1"));
    REQUIRE(slot.is_ok());
    CHECK_FALSE(slot->counted());
  }
}

TEST_CASE("Rate limits: bad settings are refused with invalid:", "[rate_limit]") {
  auto refused = [](RateLimits l) {
    Result<std::shared_ptr<RateLimiter>> r = new_rate_limiter(l);
    return !r.is_ok() && r.error().code() == StatusCode::kInvalid;
  };
  RateLimits l;
  CHECK(new_rate_limiter(l).is_ok());
  l.per_ip.count.per_second = -1;
  CHECK(refused(l));
  l = RateLimits();
  l.per_pubkey.req.per_second = std::nan("");
  CHECK(refused(l));
  l = RateLimits();
  l.ipv6_prefix_bits = 0;
  CHECK(refused(l));
  l.ipv6_prefix_bits = 129;
  CHECK(refused(l));
  for (const char* bad :
       {"not-an-ip", "10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "10.0.0.1:80", ""}) {
    INFO(bad);
    l = RateLimits();
    l.exempt_ips = {bad};
    CHECK(refused(l));
  }
}

TEST_CASE("Rate limits: parse_rate reads N/s, N/m, N/h, N and off", "[rate_limit]") {
  CHECK(parse_rate("20/s").value() == 20);
  CHECK(parse_rate("20").value() == 20);
  CHECK(parse_rate("1200/m").value() == 20);
  CHECK(parse_rate("3600/h").value() == 1);
  CHECK(parse_rate("0.5/s").value() == 0.5);
  CHECK(parse_rate("off").value() == 0);
  CHECK(parse_rate("0").value() == 0);
  for (const char* bad : {"", "x", "20/d", "-1/s", "inf", "nan", "20/", "/s", "20 /s", "1e999"}) {
    INFO(bad);
    Result<double> r = parse_rate(bad);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.error().code() == StatusCode::kInvalid);
  }
}

TEST_CASE("Rate limits: Relay::open refuses bad rate limits before it opens storage",
          "[rate_limit]") {
  Options o;
  o.sqlite.path = "/nonexistent-dir/never-created.db";
  o.rate_limits.exempt_ips = {"10.0.0.0/99"};
  Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(o));
  REQUIRE_FALSE(relay.is_ok());
  CHECK(relay.error().code() == StatusCode::kInvalid);
  CHECK(relay.error().message().find("10.0.0.0/99") != std::string::npos);
}

TEST_CASE("Rate limits: refusals reach the Prometheus text", "[rate_limit]") {
  Options o;
  o.storage = new_memory_storage();
  auto relay = Relay::open(std::move(o)).value();
  RelayStats s = relay->stats();
  CHECK(s.rate_limits.refused_event == 0);
  CHECK(s.rate_limits.tracked_keys == 0);
  s.rate_limits.refused_event = 7;
  s.rate_limits.refused_req = 8;
  s.rate_limits.refused_count = 9;
  s.rate_limits.refused_connections = 10;
  s.rate_limits.tracked_keys = 11;
  const std::string text = prometheus_text(s);
  CHECK(text.find("# TYPE relaycore_rate_limited_total counter\n") != std::string::npos);
  CHECK(text.find("relaycore_rate_limited_total{verb=\"EVENT\"} 7\n") != std::string::npos);
  CHECK(text.find("relaycore_rate_limited_total{verb=\"REQ\"} 8\n") != std::string::npos);
  CHECK(text.find("relaycore_rate_limited_total{verb=\"COUNT\"} 9\n") != std::string::npos);
  CHECK(text.find("relaycore_connections_refused_total 10\n") != std::string::npos);
  CHECK(text.find("relaycore_rate_limit_tracked_keys 11\n") != std::string::npos);
}
