// Relay stats as Prometheus text, so a host can serve /metrics without its own formatter.
#include <fmt/format.h>

#include <iterator>
#include <string>

#include "relaycore/stats.hpp"
#include "util/prometheus_format.hpp"

namespace relaycore {
namespace {

using prometheus::labelled;
using prometheus::metric;

// Microseconds as seconds with six decimals.
std::string seconds(std::uint64_t us) {
  return fmt::format("{}.{:06}", us / 1000000, us % 1000000);
}

void histogram(std::string& out, std::string_view name, std::string_view help,
               const LatencyHistogram& h) {
  const auto to = std::back_inserter(out);
  fmt::format_to(to, "# HELP relaycore_{0} {1}\n# TYPE relaycore_{0} histogram\n", name, help);
  const std::string bucket = fmt::format("{}_bucket", name);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < LatencyHistogram::kBoundsUs.size(); ++i) {
    cumulative += h.counts[i];
    labelled(out, bucket, "le", seconds(LatencyHistogram::kBoundsUs[i]), cumulative);
  }
  labelled(out, bucket, "le", "+Inf", h.count);
  fmt::format_to(to, "relaycore_{0}_sum {1}\nrelaycore_{0}_count {2}\n", name, seconds(h.sum_us),
                 h.count);
}

}  // namespace

std::string prometheus_text(const RelayStats& s) {
  std::string out;
  out.reserve(8192);
  out.append("# HELP relaycore_frames_total Client frames received, by verb.\n");
  out.append("# TYPE relaycore_frames_total counter\n");
  labelled(out, "frames_total", "verb", "EVENT", s.frames_event);
  labelled(out, "frames_total", "verb", "REQ", s.frames_req);
  labelled(out, "frames_total", "verb", "CLOSE", s.frames_close);
  labelled(out, "frames_total", "verb", "COUNT", s.frames_count);
  labelled(out, "frames_total", "verb", "AUTH", s.frames_auth);
  labelled(out, "frames_total", "verb", "invalid", s.frames_invalid);
  out.append("# HELP relaycore_events_total EVENT outcomes.\n");
  out.append("# TYPE relaycore_events_total counter\n");
  labelled(out, "events_total", "outcome", "stored", s.events_stored);
  labelled(out, "events_total", "outcome", "duplicate", s.events_duplicate);
  labelled(out, "events_total", "outcome", "rejected", s.events_rejected);
  labelled(out, "events_total", "outcome", "ephemeral", s.events_ephemeral);
  labelled(out, "events_total", "outcome", "deleted", s.events_deleted);
  labelled(out, "events_total", "outcome", "replaced", s.events_replaced);
  labelled(out, "events_total", "outcome", "error", s.events_error);
  labelled(out, "events_total", "outcome", "shadow_rejected", s.events_shadow_rejected);
  out.append("# HELP relaycore_queue_depth Items waiting in each pipeline queue.\n");
  out.append("# TYPE relaycore_queue_depth gauge\n");
  labelled(out, "queue_depth", "queue", "ingest", s.ingest_queue);
  labelled(out, "queue_depth", "queue", "write", s.write_queue);
  labelled(out, "queue_depth", "queue", "dispatch", s.dispatch_queue);
  labelled(out, "queue_depth", "queue", "query", s.query_queue);
  labelled(out, "queue_depth", "queue", "audit", s.audit_queue);
  metric(out, "write_batches_total", "counter", "Group commits.", s.write_batches);
  metric(out, "write_batch_events_total", "counter", "Events in group commits.",
         s.write_batch_events);
  metric(out, "write_batch_max", "gauge", "Largest group commit.", s.write_batch_max);
  histogram(out, "ack_latency_seconds", "EVENT received to OK queued.", s.ack_latency);
  histogram(out, "dispatch_latency_seconds", "Commit to fan-out done.", s.dispatch_latency);
  metric(out, "sessions_open", "gauge", "Open sessions.", s.sessions_open);
  metric(out, "sessions_total", "counter", "Sessions opened.", s.sessions_total);
  metric(out, "subscriptions_open", "gauge", "Live subscriptions.", s.subscriptions_open);
  metric(out, "slow_consumer_disconnects_total", "counter",
         "Sessions closed for passing their outbound cap.", s.slow_consumer_disconnects);
  metric(out, "audit_waits_total", "counter", "Writer waits on a full audit queue.", s.audit_waits);
  metric(out, "audit_wait_seconds_total", "counter", "Time the writer waited on the audit queue.",
         s.audit_wait_us / 1000000);
  metric(out, "events_delivered_total", "counter", "Events sent to live subscriptions.",
         s.events_delivered);
  metric(out, "pubsub_published_total", "counter", "Events published to other nodes.",
         s.pubsub_published);
  metric(out, "pubsub_publish_failed_total", "counter", "Events not published to other nodes.",
         s.pubsub_publish_failed);
  metric(out, "pubsub_received_total", "counter", "Events received from other nodes.",
         s.pubsub_received);
  metric(out, "expired_purged_total", "counter", "Expired events purged (NIP-40).",
         s.expired_purged);
  metric(out, "retention_removed_total", "counter", "Events the retention rules removed.",
         s.retention_removed);
  out.append(
      "# HELP relaycore_retention_removed_by_rule_total Events the retention rules removed, by "
      "rule.\n");
  out.append("# TYPE relaycore_retention_removed_by_rule_total counter\n");
  labelled(out, "retention_removed_by_rule_total", "rule", "max_age", s.retention_removed_max_age);
  labelled(out, "retention_removed_by_rule_total", "rule", "max_per_author",
           s.retention_removed_max_per_author);
  labelled(out, "retention_removed_by_rule_total", "rule", "max_bytes",
           s.retention_removed_max_bytes);
  out.append("# HELP relaycore_rate_limited_total Requests refused by the rate limits, by verb.\n");
  out.append("# TYPE relaycore_rate_limited_total counter\n");
  labelled(out, "rate_limited_total", "verb", "EVENT", s.rate_limits.refused_event);
  labelled(out, "rate_limited_total", "verb", "REQ", s.rate_limits.refused_req);
  labelled(out, "rate_limited_total", "verb", "COUNT", s.rate_limits.refused_count);
  metric(out, "connections_refused_total", "counter",
         "Connections refused for passing the per-address cap.", s.rate_limits.refused_connections);
  metric(out, "rate_limit_tracked_keys", "gauge",
         "Addresses and pubkeys the rate limiter holds a bucket for.", s.rate_limits.tracked_keys);
  out.append("# HELP relaycore_refusals_total OK false and CLOSED replies, by message prefix.\n");
  out.append("# TYPE relaycore_refusals_total counter\n");
  for (std::size_t i = 0; i < RefusalStats::kPrefixes.size(); ++i) {
    labelled(out, "refusals_total", "prefix", RefusalStats::kPrefixes[i], s.refusals.counts[i]);
  }
  labelled(out, "refusals_total", "prefix", "other", s.refusals.counts.back());
  return out;
}

}  // namespace relaycore
