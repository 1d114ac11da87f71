#include "pipeline/stats_recorder.hpp"

namespace relaycore {

std::uint64_t LatencyHistogram::percentile_us(double q) const noexcept {
  if (count == 0) return 0;
  const auto target = static_cast<std::uint64_t>(q * static_cast<double>(count) + 0.5);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBoundsUs.size(); ++i) {
    seen += counts[i];
    if (seen >= target) return kBoundsUs[i];
  }
  return kBoundsUs.back() * 10;
}

std::size_t RefusalStats::slot(std::string_view message) noexcept {
  for (std::size_t i = 0; i < kPrefixes.size(); ++i) {
    const std::string_view p = kPrefixes[i];
    if (message.size() > p.size() && message.substr(0, p.size()) == p && message[p.size()] == ':') {
      return i;
    }
  }
  return kPrefixes.size();
}

namespace pipeline {

void AtomicHistogram::record(std::chrono::steady_clock::duration d) noexcept {
  const auto us = static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
  std::size_t i = 0;
  while (i < LatencyHistogram::kBoundsUs.size() && us > LatencyHistogram::kBoundsUs[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

LatencyHistogram AtomicHistogram::snapshot() const noexcept {
  LatencyHistogram h;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    h.counts[i] = counts_[i].load(std::memory_order_relaxed);
  }
  h.count = count_.load(std::memory_order_relaxed);
  h.sum_us = sum_us_.load(std::memory_order_relaxed);
  return h;
}

void StatsRecorder::note_batch(std::uint64_t size) noexcept {
  bump(write_batches);
  bump(write_batch_events, size);
  std::uint64_t prev = write_batch_max.load(std::memory_order_relaxed);
  while (size > prev && !write_batch_max.compare_exchange_weak(prev, size)) {
  }
}

void StatsRecorder::note_refusal(std::string_view message) noexcept {
  bump(refusals[RefusalStats::slot(message)]);
}

void StatsRecorder::fill(RelayStats& out) const noexcept {
  auto get = [](const Counter& c) { return c.load(std::memory_order_relaxed); };
  out.frames_event = get(frames_event);
  out.frames_req = get(frames_req);
  out.frames_close = get(frames_close);
  out.frames_count = get(frames_count);
  out.frames_auth = get(frames_auth);
  out.frames_invalid = get(frames_invalid);
  out.events_stored = get(events_stored);
  out.events_duplicate = get(events_duplicate);
  out.events_rejected = get(events_rejected);
  out.events_ephemeral = get(events_ephemeral);
  out.events_deleted = get(events_deleted);
  out.events_replaced = get(events_replaced);
  out.events_error = get(events_error);
  out.events_shadow_rejected = get(events_shadow_rejected);
  out.write_batches = get(write_batches);
  out.write_batch_events = get(write_batch_events);
  out.write_batch_max = get(write_batch_max);
  out.sessions_open = get(sessions_open);
  out.sessions_total = get(sessions_total);
  out.subscriptions_open = get(subscriptions_open);
  out.slow_consumer_disconnects = get(slow_consumer_disconnects);
  out.audit_waits = get(audit_waits);
  out.audit_wait_us = get(audit_wait_us);
  out.events_delivered = get(events_delivered);
  out.pubsub_published = get(pubsub_published);
  out.pubsub_publish_failed = get(pubsub_publish_failed);
  out.pubsub_received = get(pubsub_received);
  out.expired_purged = get(expired_purged);
  out.retention_removed = get(retention_removed);
  out.retention_removed_max_age = get(retention_removed_max_age);
  out.retention_removed_max_per_author = get(retention_removed_max_per_author);
  out.retention_removed_max_bytes = get(retention_removed_max_bytes);
  out.ack_latency = ack_latency.snapshot();
  out.dispatch_latency = dispatch_latency.snapshot();
  for (std::size_t i = 0; i < refusals.size(); ++i) out.refusals.counts[i] = get(refusals[i]);
}

}  // namespace pipeline
}  // namespace relaycore
