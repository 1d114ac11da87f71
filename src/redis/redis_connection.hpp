// One hiredis connection with relaycore's settings (timeouts, TCP keepalive, db selection), and
// the reconnect backoff both of the PubSub's threads use.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "redis/redis_url.hpp"
#include "relaycore/status.hpp"

namespace relaycore::redis {

struct ContextFree {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

struct ReplyFree {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

// Connects within `timeout_ms`, after which every command round trip is limited to it too.
// "error: ..." when Redis cannot be reached or refuses the db.
Result<ContextPtr> connect_redis(const RedisAddress& address, std::uint32_t timeout_ms);

// Sets the read/write timeout; 0 waits forever (the subscriber waits for messages that way).
bool set_timeout(redisContext* context, std::uint32_t timeout_ms);

// Exponential backoff between reconnect attempts: min, 2*min, ... up to max.
class Backoff {
 public:
  Backoff(std::uint32_t min_ms, std::uint32_t max_ms)
      : min_ms_(min_ms == 0 ? 1 : min_ms),
        max_ms_(max_ms < min_ms_ ? min_ms_ : max_ms),
        next_ms_(min_ms_) {}

  // The wait before the next attempt; doubles the one after.
  std::chrono::milliseconds next() {
    const std::uint32_t now = next_ms_;
    next_ms_ = next_ms_ > max_ms_ / 2 ? max_ms_ : next_ms_ * 2;
    return std::chrono::milliseconds(now);
  }

  void reset() { next_ms_ = min_ms_; }

 private:
  std::uint32_t min_ms_;
  std::uint32_t max_ms_;
  std::uint32_t next_ms_;
};

}  // namespace relaycore::redis
