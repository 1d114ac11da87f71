// Core: what the stages and sessions share. It outlives every session and job that points at
// it, so a host may drop the Relay while connections wind down.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "pipeline/bounded_queue.hpp"
#include "pipeline/jobs.hpp"
#include "pipeline/recent_ids.hpp"
#include "pipeline/stats_recorder.hpp"
#include "pipeline/subscription_index.hpp"
#include "relaycore/options.hpp"
#include "relaycore/rate_limit.hpp"

namespace relaycore::pipeline {

struct Core {
  explicit Core(Options opts)
      : options(std::move(opts)),
        ingest(options.ingest_queue_capacity),
        writes(options.write_queue_capacity),
        dispatch(options.dispatch_queue_capacity),
        queries(options.query_queue_capacity) {}

  const Options options;
  std::shared_ptr<Storage> storage;
  std::shared_ptr<AuditSink> audit;
  std::shared_ptr<PubSub> pubsub;
  std::string node_id;
  // Built from options.rate_limits at open; Relay::stats() reports its refusals.
  std::shared_ptr<RateLimiter> rate_limiter;

  StatsRecorder stats;
  SubscriptionIndex index;
  RecentIds recent_ids;
  BoundedQueue<IngestJob> ingest;
  BoundedQueue<WriteJob> writes;
  BoundedQueue<DispatchJob> dispatch;
  BoundedQueue<QueryJob> queries;

  // Set by shutdown(): sessions and submit() refuse new work.
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> next_sub_key{1};
};

// Unix seconds now.
std::int64_t unix_now();

// Runs host code (policies, ack callbacks) behind a catch-all, so no exception crosses into
// relaycore's threads. Returns false if it threw.
template <typename F>
bool call_host(F&& f) noexcept {
  try {
    f();
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace relaycore::pipeline
