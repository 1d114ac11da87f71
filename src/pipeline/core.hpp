// Core: what the stages and sessions share. It outlives every session and job that points at
// it, so a host may drop the Relay while connections wind down.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <source_location>
#include <string_view>

#include "pipeline/bounded_queue.hpp"
#include "pipeline/call_host.hpp"
#include "pipeline/callback_executor.hpp"
#include "pipeline/change_listeners.hpp"
#include "pipeline/jobs.hpp"
#include "pipeline/live_settings.hpp"
#include "pipeline/neg_session.hpp"
#include "pipeline/query_scheduler.hpp"
#include "pipeline/recent_ids.hpp"
#include "pipeline/stats_recorder.hpp"
#include "pipeline/subscription_index.hpp"
#include "pipeline/verifier.hpp"
#include "relaycore/options.hpp"
#include "relaycore/rate_limit.hpp"
#include "util/log.hpp"

namespace relaycore::pipeline {

struct Core {
  explicit Core(Options opts)
      : options(std::move(opts)),
        live(options),
        log(options.logger, options.log_level),
        ingest(options.ingest_queue_capacity),
        writes(options.write_queue_capacity),
        dispatch(options.dispatch_queue_capacity),
        scheduler(options.max_queued_queries,
                  std::chrono::milliseconds(options.slow_reader_timeout_ms),
                  options.reader_threads > 1 ? options.reader_threads - 1 : 1),
        callbacks(std::make_shared<CallbackExecutor>(log)),
        listeners(std::make_shared<ChangeListeners>(callbacks, options.max_queued_changes, log)),
        neg_reaper(std::chrono::milliseconds(options.negentropy.idle_timeout_ms)) {}

  // As opened. Its limits, policies, auth_on_connect, max_future_seconds and info may be
  // stale: read those from `live`.
  const Options options;
  LiveOptions live;
  // Options::logger behind the level filter and the repeat throttle.
  const Log log;
  std::shared_ptr<Storage> storage;
  std::shared_ptr<AuditSink> audit;
  std::shared_ptr<PubSub> pubsub;
  std::string node_id;
  // Built from options.rate_limits at open; Relay::stats() reports its refusals.
  std::shared_ptr<RateLimiter> rate_limiter;

  StatsRecorder stats;
  SubscriptionIndex index;
  RecentIds recent_ids;
  Verifier verifier{{live, log, stats, recent_ids, storage}};
  BoundedQueue<IngestJob> ingest;
  BoundedQueue<WriteJob> writes;
  BoundedQueue<DispatchJob, DispatchJobWeight> dispatch;
  QueryScheduler scheduler;
  // In-process host callbacks: subscriptions, change listeners, submit_async completions.
  std::shared_ptr<CallbackExecutor> callbacks;
  std::shared_ptr<ChangeListeners> listeners;
  // Closes NIP-77 sessions left idle.
  NegReaper neg_reaper;

  // Set by shutdown(): sessions and submit() refuse new work.
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> next_sub_key{1};
};

// Unix seconds now.
std::int64_t unix_now();

}  // namespace relaycore::pipeline
