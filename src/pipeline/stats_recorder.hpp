// StatsRecorder: lock-free counters that every stage bumps, and the snapshot Relay::stats()
// returns.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "relaycore/stats.hpp"

namespace relaycore::pipeline {

class AtomicHistogram {
 public:
  void record(std::chrono::steady_clock::duration d) noexcept;
  LatencyHistogram snapshot() const noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, LatencyHistogram::kBoundsUs.size() + 1> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

struct StatsRecorder {
  using Counter = std::atomic<std::uint64_t>;
  Counter frames_event{0}, frames_req{0}, frames_close{0}, frames_count{0}, frames_auth{0},
      frames_invalid{0};
  Counter events_stored{0}, events_duplicate{0}, events_rejected{0}, events_ephemeral{0},
      events_deleted{0}, events_replaced{0}, events_error{0}, events_shadow_rejected{0};
  Counter write_batches{0}, write_batch_events{0}, write_batch_max{0};
  Counter sessions_open{0}, sessions_total{0}, subscriptions_open{0};
  Counter slow_consumer_disconnects{0};
  Counter audit_waits{0}, audit_wait_us{0};
  Counter events_delivered{0}, pubsub_published{0}, pubsub_publish_failed{0}, pubsub_received{0};
  Counter expired_purged{0}, retention_removed{0};
  Counter retention_removed_max_age{0}, retention_removed_max_per_author{0},
      retention_removed_max_bytes{0};
  AtomicHistogram ack_latency, dispatch_latency;
  std::array<Counter, RefusalStats::kPrefixes.size() + 1> refusals{};

  void note_batch(std::uint64_t size) noexcept;
  // Counts an OK false or CLOSED sent with `message`, by its prefix.
  void note_refusal(std::string_view message) noexcept;
  // Fills the counters of `out`; queue depths are the caller's to add.
  void fill(RelayStats& out) const noexcept;
};

// Counter++ with relaxed ordering: stats need no synchronisation.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
  c.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace relaycore::pipeline
