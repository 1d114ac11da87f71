// Helpers for the rate limiter tests: a fake clock, clients, and counting allowed requests.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "relaycore/rate_limit.hpp"

namespace relaycore::test {

// A clock that moves only when told; safe to read from many threads.
class FakeClock {
 public:
  RateLimitClock clock() const {
    return
        [ns = ns_] { return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(*ns)); };
  }
  void advance(std::chrono::nanoseconds d) { ns_->fetch_add(d.count()); }

 private:
  // Far from zero, as a real steady clock is.
  std::shared_ptr<std::atomic<std::int64_t>> ns_ =
      std::make_shared<std::atomic<std::int64_t>>(std::int64_t{1'000'000} * 1'000'000'000);
};

inline ClientInfo client(std::string address, std::vector<Pubkey> authenticated = {}) {
  return ClientInfo{std::move(address), std::move(authenticated)};
}

inline Pubkey pubkey(std::uint8_t fill) {
  Pubkey pk;
  pk.fill(fill);
  return pk;
}

// Limits with nothing on but what a test turns on.
inline RateLimits no_limits() {
  RateLimits l;
  l.per_ip = VerbLimits{};
  l.max_connections_per_ip = 0;
  l.exempt_ips.clear();
  return l;
}

inline std::shared_ptr<RateLimiter> limiter(const RateLimits& limits, const FakeClock& clock) {
  Result<std::shared_ptr<RateLimiter>> r = new_rate_limiter(limits, clock.clock());
  REQUIRE(r.is_ok());
  return *r;
}

// How many of `n` tries are allowed; every refusal must carry the NIP-01 prefix.
inline int allowed(RateLimiter& rl, Verb verb, const ClientInfo& c, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    Status s = rl.allow(verb, c);
    if (s.is_ok()) {
      ++ok;
    } else {
      CHECK(s.code() == StatusCode::kRateLimited);
      CHECK(s.message().rfind("rate-limited: ", 0) == 0);
    }
  }
  return ok;
}

}  // namespace relaycore::test
