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
#include "pipeline/jobs.hpp"
#include "pipeline/query_scheduler.hpp"
#include "pipeline/recent_ids.hpp"
#include "pipeline/stats_recorder.hpp"
#include "pipeline/subscription_index.hpp"
#include "relaycore/options.hpp"
#include "util/log.hpp"

namespace relaycore::pipeline {

struct Core {
  explicit Core(Options opts)
      : options(std::move(opts)),
        log(options.logger, options.log_level),
        ingest(options.ingest_queue_capacity),
        writes(options.write_queue_capacity),
        dispatch(options.dispatch_queue_capacity),
        scheduler(options.max_queued_queries,
                  std::chrono::milliseconds(options.slow_reader_timeout_ms)) {}

  const Options options;
  // Options::logger behind the level filter and the repeat throttle.
  const Log log;
  std::shared_ptr<Storage> storage;
  std::shared_ptr<AuditSink> audit;
  std::shared_ptr<PubSub> pubsub;
  std::string node_id;

  StatsRecorder stats;
  SubscriptionIndex index;
  RecentIds recent_ids;
  BoundedQueue<IngestJob> ingest;
  BoundedQueue<WriteJob> writes;
  BoundedQueue<DispatchJob> dispatch;
  QueryScheduler scheduler;

  // Set by shutdown(): sessions and submit() refuse new work.
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> next_sub_key{1};
};

// Unix seconds now.
std::int64_t unix_now();

// Runs host code (policies, ack callbacks, Connection::close) behind a catch-all, so no
// exception crosses into relaycore's threads. Returns false if it threw, after logging `what`
// with the exception's text.
template <typename F>
bool call_host(const Log& log, std::string_view what, F&& f,
               std::source_location site = std::source_location::current()) noexcept {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    log.failure(LogLevel::kError, what, e.what(), site);
  } catch (...) {
    log.failure(LogLevel::kError, what, "an exception that is not a std::exception", site);
  }
  return false;
}

}  // namespace relaycore::pipeline
