// The relay's status page: GET / from a browser (Accept: text/html) gets a self-contained HTML
// page that polls GET /status.json, which carries the relay's NIP-11 document, the server's
// uptime, Relay::stats() and the last minutes of per-second samples for the charts. Nothing
// about clients (no event content, keys or addresses) is shown: the stats are counters only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "relaycore/relay.hpp"
#include "relaycore/stats.hpp"
#include "relaycore/websocket/server.hpp"

namespace relaycore::examples {

class StatusPage {
 public:
  // Samples kept for the charts: five minutes, one a second.
  static constexpr std::size_t kHistory = 300;
  static constexpr std::chrono::milliseconds kInterval{1000};

  // Uptime is counted from here and a thread samples the stats from here on, so construct it
  // when the server starts; destruction stops the thread. `relay` must outlive this.
  explicit StatusPage(const Relay& relay);

  // The page or its JSON when `request` (a GET) asks for one of them; nullopt otherwise, so the
  // caller answers as before (NIP-11 to Accept: application/nostr+json, WebSocket upgrades).
  std::optional<websocket::HttpResponse> serve(const websocket::HttpRequest& request) const;

  // {"info":NIP-11,"uptime_ms":N,"stats":stats_json(Relay::stats()),"history":{...}}, where
  // history holds one array per chart series, oldest sample first.
  std::string json() const;

 private:
  // What the charts show over one interval between two snapshots of the stats.
  struct Sample {
    std::int64_t uptime_ms = 0;
    double ingest_per_s = 0, deliveries_per_s = 0;
    // OK latency percentiles of the EVENTs answered in the interval; none when there were none.
    std::optional<double> ok_p50_ms, ok_p99_ms;
    std::uint64_t connections = 0, subscriptions = 0;
  };

  std::int64_t uptime_ms() const;
  void run(std::stop_token stop);
  std::string history_json() const;

  const Relay& relay_;
  const std::chrono::steady_clock::time_point started_;
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::deque<Sample> history_;  // guarded by mu_
  // Last: it starts once the rest is set up, and is stopped and joined before the rest goes.
  std::jthread sampler_;
};

}  // namespace relaycore::examples
