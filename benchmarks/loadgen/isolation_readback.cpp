// readback: reads stored events back by id as fast as the relay serves them. Each connection
// keeps one REQ of `batch` random stored ids in flight and sends the next when its EOSE comes,
// so the relay always has `connections` REQs to serve. Reports events/s, REQ->EOSE latency and,
// given the relay's pid, the relay's CPU per event read back (utime + stime from /proc), which
// stays meaningful when the client, not the relay, is the limit.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "bench_corpus.hpp"
#include "isolation.hpp"
#include "ws_peer.hpp"

namespace relaycore::isolation {
namespace {

using loadgen::WsPeer;

constexpr const char* kUsage =
    "usage: relaycore-bench-isolation readback --url URL --ids FILE [flags]\n"
    "  --url URL            the relay, ws://host:port\n"
    "  --ids FILE           stored ids, one hex id per line (seed --ids-out)\n"
    "  --connections C      connections, one REQ in flight each (default 8)\n"
    "  --batch B            ids per REQ (default 250)\n"
    "  --seconds S          measured time, after one second of warm-up (default 10)\n"
    "  --relay-pid PID      read the relay's CPU time from /proc/PID/stat\n";

// REQ texts are built before the run and cycled, so the client spends its time reading.
constexpr std::size_t kRequestTexts = 256;

struct Tally {
  std::size_t events = 0, reqs = 0;
  std::vector<double> eose_ms;
};

// One connection: a REQ in flight, the next sent on its EOSE.
class Reader {
 public:
  Reader(asio::io_context& io, const websocket::detail::WsUrl& url,
         const std::vector<std::string>& requests, std::size_t index, Tally& tally,
         const bool& measuring)
      : requests_(requests), next_(index * 37), tally_(tally), measuring_(measuring) {
    peer_ = std::make_shared<WsPeer>(
        io, url,
        WsPeer::Callbacks{[this](const Status& s) {
                            if (!s) bench::die("readback: connect: " + s.message());
                            send();
                          },
                          [this](std::string_view text) { on_text(text); },
                          [](const std::string& why) { bench::die("readback: " + why); }});
  }
  void start() { peer_->start(); }

 private:
  void send() {
    sent_ = Clock::now();
    peer_->send_text(requests_[next_++ % requests_.size()]);
  }
  void on_text(std::string_view text) {
    if (text.starts_with("[\"EVENT\"")) {
      if (measuring_) ++tally_.events;
      return;
    }
    if (!text.starts_with("[\"EOSE\"")) bench::die("readback: " + std::string(text.substr(0, 200)));
    if (measuring_) {
      ++tally_.reqs;
      tally_.eose_ms.push_back(ms_since(sent_));
    }
    send();
  }

  const std::vector<std::string>& requests_;
  std::size_t next_;
  Tally& tally_;
  const bool& measuring_;
  std::shared_ptr<WsPeer> peer_;
  Clock::time_point sent_;
};

}  // namespace

int run_readback(int argc, char** argv) {
  std::string url_text, ids_path;
  std::size_t connections = 8, batch = 250, seconds = 10;
  long relay_pid = 0;
  FlagReader(argc, argv, kUsage).read([&](const std::string& flag, const std::string& v) {
    if (flag == "--url") {
      url_text = v;
    } else if (flag == "--ids") {
      ids_path = v;
    } else if (flag == "--connections") {
      connections = std::max<std::size_t>(1, to_count(flag, v));
    } else if (flag == "--batch") {
      batch = std::max<std::size_t>(1, to_count(flag, v));
    } else if (flag == "--seconds") {
      seconds = std::max<std::size_t>(1, to_count(flag, v));
    } else if (flag == "--relay-pid") {
      relay_pid = static_cast<long>(to_count(flag, v));
    } else {
      return false;
    }
    return true;
  });
  if (url_text.empty() || ids_path.empty()) FlagReader(argc, argv, kUsage).print_usage_and_exit(2);
  auto url = websocket::detail::parse_ws_url(url_text);
  if (!url) bench::die("readback: " + url.error().message());

  std::vector<std::string> ids;
  std::ifstream in(ids_path);
  for (std::string line; std::getline(in, line);) {
    if (line.size() == 64) ids.push_back(line);
  }
  if (ids.size() < batch) bench::die("readback: fewer ids in " + ids_path + " than --batch");
  std::mt19937_64 rng(7);
  std::vector<std::string> requests;
  for (std::size_t r = 0; r < kRequestTexts; ++r) {
    std::string req = "[\"REQ\",\"r\",{\"ids\":[";
    for (std::size_t i = 0; i < batch; ++i) {
      req += (i == 0 ? "\"" : ",\"") + ids[rng() % ids.size()] + "\"";
    }
    requests.push_back(req + "]}]");
  }

  // The relay's CPU seconds so far; 0 without --relay-pid.
  auto relay_cpu = [&] {
    return relay_pid > 0 ? bench::stat_cpu_seconds("/proc/" + std::to_string(relay_pid) + "/stat")
                         : 0.0;
  };
  asio::io_context io;
  Tally tally;
  bool measuring = false;
  std::vector<std::unique_ptr<Reader>> readers;
  for (std::size_t c = 0; c < connections; ++c) {
    readers.push_back(std::make_unique<Reader>(io, *url, requests, c, tally, measuring));
    readers.back()->start();
  }
  asio::steady_timer timer(io);
  double cpu_start = 0;
  Clock::time_point start;
  timer.expires_after(std::chrono::seconds(1));
  timer.async_wait([&](const asio::error_code&) {
    measuring = true;
    cpu_start = relay_cpu();
    start = Clock::now();
    timer.expires_after(std::chrono::seconds(seconds));
    timer.async_wait([&](const asio::error_code&) { io.stop(); });
  });
  io.run();
  const double elapsed = ms_since(start) / 1000;
  const double cpu = relay_cpu() - cpu_start;
  const double per_event_us = tally.events == 0 ? 0 : cpu * 1e6 / static_cast<double>(tally.events);
  std::printf(
      "{\"connections\":%zu,\"batch\":%zu,\"seconds\":%.2f,\"events\":%zu,\"reqs\":%zu,"
      "\"events_per_s\":%.0f,\"eose_ms\":%s,\"relay_cpu_s\":%.3f,\"relay_cpu_us_per_event\":%.3f}"
      "\n",
      connections, batch, elapsed, tally.events, tally.reqs,
      static_cast<double>(tally.events) / elapsed, latency_json(tally.eose_ms).c_str(), cpu,
      per_event_us);
  return 0;
}

}  // namespace relaycore::isolation
