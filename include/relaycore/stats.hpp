// Stats: counters and latency histograms a host exports (the example server serves them as
// Prometheus text at /metrics and as JSON at /status.json).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relaycore/export.hpp"

namespace relaycore {

// Latency histogram with fixed, roughly logarithmic bucket bounds in microseconds.
struct LatencyHistogram {
  static constexpr std::array<std::uint64_t, 16> kBoundsUs = {
      50,    100,   250,    500,    1000,   2500,    5000,    10000,
      25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000};
  // counts[i] holds samples <= kBoundsUs[i] (and > the bound before); the last slot holds the
  // rest.
  std::array<std::uint64_t, kBoundsUs.size() + 1> counts{};
  std::uint64_t count = 0;
  std::uint64_t sum_us = 0;

  // The bucket bound at or below which fraction q of samples lie (an upper estimate).
  RELAYCORE_API std::uint64_t percentile_us(double q) const noexcept;
};

// What the rate limiter refused (see rate_limit.hpp).
struct RateLimitStats {
  // Requests refused with "rate-limited:", by verb.
  std::uint64_t refused_event = 0, refused_req = 0, refused_count = 0;
  // Connections refused for passing the per-address cap.
  std::uint64_t refused_connections = 0;
  // Addresses and pubkeys with a bucket in memory at the moment of the call.
  std::uint64_t tracked_keys = 0;
};

// Refusals sent to clients (OK false, CLOSED, and the reply to a frame that could not be read),
// by the machine-readable prefix of their message (NIP-01, NIP-42), so an operator sees why
// clients are turned away without reading the log.
struct RefusalStats {
  static constexpr std::array<std::string_view, 9> kPrefixes = {
      "invalid",    "pow",  "duplicate",     "blocked", "rate-limited",
      "restricted", "mute", "auth-required", "error"};
  // counts[i] holds refusals whose message starts with kPrefixes[i] and ':'; the last slot holds
  // those with none of these prefixes.
  std::array<std::uint64_t, kPrefixes.size() + 1> counts{};

  // The slot of counts a refusal message is counted in.
  RELAYCORE_API static std::size_t slot(std::string_view message) noexcept;
};

struct RelayStats {
  // Frames received, by verb.
  std::uint64_t frames_event = 0, frames_req = 0, frames_close = 0, frames_count = 0,
                frames_auth = 0, frames_invalid = 0;
  // EVENT outcomes.
  std::uint64_t events_stored = 0, events_duplicate = 0, events_rejected = 0, events_ephemeral = 0,
                events_deleted = 0, events_replaced = 0, events_error = 0,
                events_shadow_rejected = 0;
  // Queue depths at the moment of the call, in the units of their capacities in Options
  // (dispatch_queue counts committed events, not commits).
  std::uint64_t ingest_queue = 0, write_queue = 0, dispatch_queue = 0, query_queue = 0,
                audit_queue = 0;
  // Group commits.
  std::uint64_t write_batches = 0, write_batch_events = 0, write_batch_max = 0;
  // Ack latency: event received to OK queued. Dispatch latency: commit to fan-out done.
  LatencyHistogram ack_latency, dispatch_latency;
  // Sessions.
  std::uint64_t sessions_open = 0, sessions_total = 0, subscriptions_open = 0;
  std::uint64_t slow_consumer_disconnects = 0;
  // Times the writer waited on a full audit queue, and the total wait.
  std::uint64_t audit_waits = 0, audit_wait_us = 0;
  // Events delivered to live subscriptions, and PubSub traffic. An event this node committed
  // counts once as published (handed to the PubSub and not reported lost) or once as
  // publish_failed (refused by publish(), or lost after it; see PubSub::dropped_after_accept).
  std::uint64_t events_delivered = 0, pubsub_published = 0, pubsub_publish_failed = 0,
                pubsub_received = 0;
  std::uint64_t expired_purged = 0;
  // Events the retention rules removed (relaycore/retention.hpp): in all, and by the rule that
  // removed them (RetentionRule).
  std::uint64_t retention_removed = 0;
  std::uint64_t retention_removed_max_age = 0, retention_removed_max_per_author = 0,
                retention_removed_max_bytes = 0;
  // The relay's rate limiter keeps these itself; Relay::stats() copies them in.
  RateLimitStats rate_limits;
  RefusalStats refusals;
};

// The stats in the Prometheus text exposition format (version 0.0.4), every metric prefixed
// "relaycore_"; latency histograms become Prometheus histograms in seconds.
RELAYCORE_API std::string prometheus_text(const RelayStats& stats);

// The stats as one JSON object: a member per RelayStats field, by the same name. A latency
// histogram is an object with count, sum_us, p50_us, p90_us, p99_us, bounds_us and counts (per
// bucket, not cumulative); refusals is an object from prefix to count, with "other" last.
RELAYCORE_API std::string stats_json(const RelayStats& stats);

}  // namespace relaycore
