// relaycore-loadgen's parts: its flags, the pre-signed events with their timestamps, and the
// figures it reports. main.cpp drives the connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace relaycore::loadgen {

struct Config {
  std::string url = "ws://127.0.0.1:7777";
  std::string sub_url;  // subscribers' relay; empty: same as url
  std::size_t events = 20000;
  std::size_t keys = 16;
  std::size_t content_size = 100;
  std::size_t publishers = 4;
  std::size_t subscribers = 1;       // connections whose REQ matches every published event
  std::size_t idle_subscribers = 0;  // connections whose REQ matches none of them
  std::size_t window = 16;           // closed loop: EVENTs in flight per publisher
  double rate = 0;                   // open loop: offered events/s over all publishers
  std::size_t threads = 2;
  std::uint32_t timeout_ms = 10000;  // an EVENT without OK this long after the last send
  bool json = false;
  std::string role;  // "subscribers": the subscriber process a run starts for itself
  std::string tag;   // the run's tag, for the subscriber process
};

// Parses argv; prints usage and exits on --help or a bad flag.
Config parse_config(int argc, char** argv);

// The first 16 hex digits of an event id as a number: the key events are found by.
std::uint64_t id_prefix(std::string_view hex);

// The 64 hex digits after `marker` in a frame (`["OK","` or `{"id":"`), or empty.
inline std::string_view id_after(std::string_view text, std::string_view marker) {
  const std::size_t at = text.find(marker);
  if (at == std::string_view::npos || text.size() < at + marker.size() + 64) return {};
  return text.substr(at + marker.size(), 64);
}

using Clock = std::chrono::steady_clock;
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// The events of one run and what happened to each. Timestamps are steady-clock nanoseconds,
// 0 for "not yet"; they are written from the io threads.
class EventTable {
 public:
  // Signs `config.events` events tagged ["t", run_tag] on all cores, before any timing.
  EventTable(const Config& config, const std::string& run_tag);

  std::size_t size() const { return frames_.size(); }
  const std::string& frame(std::size_t i) const { return frames_[i]; }
  // The event whose 64-hex id starts at `hex`, or nullopt.
  std::optional<std::size_t> find(std::string_view hex) const;
  // The event whose id starts with these 16 hex digits (see id_prefix), or nullopt.
  std::optional<std::size_t> find_prefix(std::uint64_t prefix) const;

  std::atomic<std::int64_t>& sent(std::size_t i) { return sent_[i]; }
  std::atomic<std::int64_t>& acked(std::size_t i) { return acked_[i]; }

 private:
  std::vector<std::string> frames_;  // ["EVENT",<json>]
  std::unordered_map<std::uint64_t, std::size_t> index_;
  std::unique_ptr<std::atomic<std::int64_t>[]> sent_, acked_;
};

// Counters shared by every connection.
struct Counters {
  std::atomic<std::size_t> next_event{0};
  std::atomic<std::size_t> ok{0}, rejected{0};
  std::atomic<std::size_t> connection_errors{0}, unknown_frames{0};
  std::mutex mu;
  std::string first_error;  // the first rejection or connection error, for the report
  void note_error(const std::string& what) {
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = what;
  }
};

// p50/p99/p999 in milliseconds of the samples (sorted in place); zeros when empty.
struct Percentiles {
  double p50 = 0, p99 = 0, p999 = 0;
  std::size_t count = 0;
};
Percentiles percentiles(std::vector<double>& samples_ms);

struct Report {
  std::size_t events = 0, ok = 0, rejected = 0, timeouts = 0, deliveries = 0;
  std::size_t connection_errors = 0, undelivered = 0;
  double seconds = 0, events_per_s = 0, offered_rate = 0;
  // Deliveries per subscriber per second, from the start to the last EVENT frame any subscriber
  // got: the rate at which fan-out kept up, which can be far below events_per_s (acks).
  double delivered_events_per_s = 0;
  // Send to first and to last delivery of an event (the last only when every subscriber got it).
  Percentiles ack, first_delivery, all_delivered;
  // EVENT frames delivered per second over all subscribers.
  double delivered_frames_per_s = 0;
  std::string first_error;
};
void print_report(const Config& config, const Report& report);

}  // namespace relaycore::loadgen
