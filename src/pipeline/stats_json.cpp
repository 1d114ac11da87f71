// Relay stats as JSON, for the C API and the example server's status page: one member per
// RelayStats field, by the same name.
#include <string>
#include <string_view>

#include "relaycore/stats.hpp"

namespace relaycore {
namespace {

// Writes the members of one JSON object; the caller writes its braces.
class Members {
 public:
  explicit Members(std::string& out) : out_(out) {}

  void add(std::string_view name, std::uint64_t value) {
    key(name);
    out_.append(std::to_string(value));
  }

  void add(std::string_view name, const LatencyHistogram& h) {
    object(name, [&](Members& m) {
      m.add("count", h.count);
      m.add("sum_us", h.sum_us);
      m.add("p50_us", h.percentile_us(0.5));
      m.add("p90_us", h.percentile_us(0.9));
      m.add("p99_us", h.percentile_us(0.99));
      // Per bucket, not cumulative: counts[i] samples at or below bounds_us[i], the last over
      // all.
      m.key("bounds_us");
      m.list(LatencyHistogram::kBoundsUs);
      m.key("counts");
      m.list(h.counts);
    });
  }

  void add(std::string_view name, const RateLimitStats& r) {
    object(name, [&](Members& m) {
      m.add("refused_event", r.refused_event);
      m.add("refused_req", r.refused_req);
      m.add("refused_count", r.refused_count);
      m.add("refused_connections", r.refused_connections);
      m.add("tracked_keys", r.tracked_keys);
    });
  }

  void add(std::string_view name, const RefusalStats& r) {
    object(name, [&](Members& m) {
      for (std::size_t i = 0; i < RefusalStats::kPrefixes.size(); ++i) {
        m.add(RefusalStats::kPrefixes[i], r.counts[i]);
      }
      m.add("other", r.counts.back());
    });
  }

 private:
  // A member whose value is an object; `fill` writes its members.
  template <typename Fill>
  void object(std::string_view name, Fill fill) {
    key(name);
    out_.push_back('{');
    Members m(out_);
    fill(m);
    out_.push_back('}');
  }

  void key(std::string_view name) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.append("\"").append(name).append("\":");
  }

  template <typename List>
  void list(const List& values) {
    out_.push_back('[');
    bool first = true;
    for (std::uint64_t v : values) {
      if (!first) out_.push_back(',');
      first = false;
      out_.append(std::to_string(v));
    }
    out_.push_back(']');
  }

  std::string& out_;
  bool first_ = true;
};

}  // namespace

std::string stats_json(const RelayStats& s) {
  std::string out = "{";
  Members m(out);
  m.add("frames_event", s.frames_event);
  m.add("frames_req", s.frames_req);
  m.add("frames_close", s.frames_close);
  m.add("frames_count", s.frames_count);
  m.add("frames_auth", s.frames_auth);
  m.add("frames_invalid", s.frames_invalid);
  m.add("events_stored", s.events_stored);
  m.add("events_duplicate", s.events_duplicate);
  m.add("events_rejected", s.events_rejected);
  m.add("events_ephemeral", s.events_ephemeral);
  m.add("events_deleted", s.events_deleted);
  m.add("events_replaced", s.events_replaced);
  m.add("events_error", s.events_error);
  m.add("events_shadow_rejected", s.events_shadow_rejected);
  m.add("ingest_queue", s.ingest_queue);
  m.add("write_queue", s.write_queue);
  m.add("dispatch_queue", s.dispatch_queue);
  m.add("query_queue", s.query_queue);
  m.add("audit_queue", s.audit_queue);
  m.add("write_batches", s.write_batches);
  m.add("write_batch_events", s.write_batch_events);
  m.add("write_batch_max", s.write_batch_max);
  m.add("ack_latency", s.ack_latency);
  m.add("dispatch_latency", s.dispatch_latency);
  m.add("sessions_open", s.sessions_open);
  m.add("sessions_total", s.sessions_total);
  m.add("subscriptions_open", s.subscriptions_open);
  m.add("slow_consumer_disconnects", s.slow_consumer_disconnects);
  m.add("audit_waits", s.audit_waits);
  m.add("audit_wait_us", s.audit_wait_us);
  m.add("events_delivered", s.events_delivered);
  m.add("pubsub_published", s.pubsub_published);
  m.add("pubsub_publish_failed", s.pubsub_publish_failed);
  m.add("pubsub_received", s.pubsub_received);
  m.add("expired_purged", s.expired_purged);
  m.add("retention_removed", s.retention_removed);
  m.add("retention_removed_max_age", s.retention_removed_max_age);
  m.add("retention_removed_max_per_author", s.retention_removed_max_per_author);
  m.add("retention_removed_max_bytes", s.retention_removed_max_bytes);
  m.add("rate_limits", s.rate_limits);
  m.add("refusals", s.refusals);
  out.push_back('}');
  return out;
}

}  // namespace relaycore
