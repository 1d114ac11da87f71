// The rate limiter under load: bounded memory under a flood of distinct keys, and many threads
// at once (these run under TSan).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "rate_limit_test_util.hpp"
#include "relaycore/rate_limit.hpp"

using namespace relaycore;
using namespace relaycore::test;
using namespace std::chrono_literals;

TEST_CASE(
    "Rate limits: memory stays bounded under a flood of distinct addresses, and throttled "
    "clients stay throttled",
    "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {1, 2};
  l.max_tracked_keys = 256;
  auto rl = limiter(l, clock);
  auto heavy = [](int i) { return client("198.51.100." + std::to_string(i) + ":1"); };
  for (int i = 0; i < 32; ++i) REQUIRE(allowed(*rl, Verb::kEvent, heavy(i), 3) == 2);

  std::uint64_t most = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string address = "10." + std::to_string(i >> 16) + "." +
                                std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255);
    REQUIRE(rl->allow(Verb::kEvent, client(address)).is_ok());
    most = std::max(most, rl->stats().tracked_keys);
  }
  CHECK(most <= 256);
  CHECK(most >= 128);
  // Fresh keys hold more tokens than drained ones, so they were forgotten first.
  for (int i = 0; i < 32; ++i) CHECK(allowed(*rl, Verb::kEvent, heavy(i), 1) == 0);

  // Once every bucket has refilled, none carries anything worth keeping: a shard that runs out
  // of room drops all of them, not just the quarter it needs. (Evicting a quarter at a time
  // would keep every shard at least three quarters full: 192 keys.)
  clock.advance(1h);
  REQUIRE(rl->stats().tracked_keys >= 192);
  std::uint64_t fewest = UINT64_MAX;
  for (int i = 0; i < 256; ++i) {
    REQUIRE(rl->allow(Verb::kEvent, client("192.0.2." + std::to_string(i) + ":1")).is_ok());
    fewest = std::min(fewest, rl->stats().tracked_keys);
  }
  CHECK(fewest < 160);
}

TEST_CASE("Rate limits: pubkey keys are bounded too", "[rate_limit]") {
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_pubkey.req = {1, 5};
  l.max_tracked_keys = 64;
  auto rl = limiter(l, clock);
  for (int i = 0; i < 5000; ++i) {
    Pubkey pk{};
    pk[0] = static_cast<std::uint8_t>(i);
    pk[1] = static_cast<std::uint8_t>(i >> 8);
    REQUIRE(rl->allow(Verb::kReq, client("203.0.113.7:1", {pk})).is_ok());
  }
  CHECK(rl->stats().tracked_keys <= 64);
}

TEST_CASE("Rate limits: many threads at once get exactly the burst between them", "[rate_limit]") {
  FakeClock clock;  // never advanced: no token is refilled during the test
  RateLimits l = no_limits();
  l.per_ip.event = {1, 1000};
  l.per_ip.req = {1, 600};
  l.per_ip.count = {1, 1000000};
  l.per_pubkey.req = {1, 300};
  l.max_connections_per_ip = 3;
  l.max_tracked_keys = 64;  // small, so the threads also evict under each other
  auto rl = limiter(l, clock);
  constexpr int kThreads = 8, kTries = 600;
  const Pubkey a = pubkey(0xaa);
  std::atomic<int> events{0}, reqs{0}, slot_failures{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      const ClientInfo shared = client("203.0.113.7:" + std::to_string(t));
      const ClientInfo with_pubkey = client("198.51.100.1:" + std::to_string(t), {a});
      for (int i = 0; i < kTries; ++i) {
        if (rl->allow(Verb::kEvent, shared).is_ok()) events.fetch_add(1);
        if (rl->allow(Verb::kReq, with_pubkey).is_ok()) reqs.fetch_add(1);
        // Addresses of their own, to churn the shards. Their buckets stay fuller than the
        // shared ones, so they are the ones evicted.
        (void)rl->allow(Verb::kCount,
                        client("10.1." + std::to_string(t) + "." + std::to_string(i % 200) + ":1"));
        Result<ConnectionSlot> slot = rl->open_connection(shared);
        if (!slot.is_ok()) slot_failures.fetch_add(1);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(events.load() == 1000);
  CHECK(reqs.load() == 300);
  const RateLimitStats s = rl->stats();
  CHECK(s.refused_event == static_cast<std::uint64_t>(kThreads * kTries - 1000));
  CHECK(s.refused_req == static_cast<std::uint64_t>(kThreads * kTries - 300));
  CHECK(s.refused_connections == static_cast<std::uint64_t>(slot_failures.load()));
  CHECK(s.tracked_keys <= 64);
  // The refused REQs gave their address tokens back: only the 300 allowed were taken.
  CHECK(allowed(*rl, Verb::kReq, client("198.51.100.1:1"), 1000) == 600 - 300);
  // Every slot was released: the address has its three places again.
  std::vector<ConnectionSlot> slots;
  for (int i = 0; i < 3; ++i) {
    Result<ConnectionSlot> slot = rl->open_connection(client("203.0.113.7:9"));
    REQUIRE(slot.is_ok());
    slots.push_back(std::move(slot).value());
  }
  CHECK_FALSE(rl->open_connection(client("203.0.113.7:9")).is_ok());
}
