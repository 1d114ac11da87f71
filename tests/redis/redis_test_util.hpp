// Helpers for the Redis PubSub tests: a handler that records what it receives, and options with
// short backoff so reconnects happen within a test's patience.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "relaycore/redis.hpp"

namespace relaycore::redis_test {

using namespace std::chrono_literals;

inline RedisOptions fast_options(const std::string& url, const std::string& channel) {
  RedisOptions o;
  o.url = url;
  o.channel = channel;
  o.reconnect_min_ms = 20;
  o.reconnect_max_ms = 200;
  o.timeout_ms = 1000;
  return o;
}

// Records (event, origin) pairs handed to a PubSub handler.
class Inbox {
 public:
  PubSub::Handler handler() {
    return [this](const EventPtr& event, const std::string& origin) {
      std::lock_guard lock(mu_);
      received_.emplace_back(event, origin);
      cv_.notify_all();
    };
  }

  // Waits until at least n were received; false on timeout.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
  }

  std::vector<std::pair<EventPtr, std::string>> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }

  bool has(const EventPtr& event) const {
    std::lock_guard lock(mu_);
    return has_locked(event);
  }

  // Waits until `event` was received; false on timeout.
  bool wait_has(const EventPtr& event, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return has_locked(event); });
  }

 private:
  bool has_locked(const EventPtr& event) const {
    for (const auto& [e, origin] : received_) {
      if (e->id() == event->id()) return true;
    }
    return false;
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<EventPtr, std::string>> received_;
};

// Opens a Redis PubSub or fails the test.
inline std::shared_ptr<PubSub> open_pubsub(const RedisOptions& options) {
  Result<std::shared_ptr<PubSub>> p = new_redis_pubsub(options);
  return p ? std::move(p).value() : nullptr;
}

}  // namespace relaycore::redis_test
