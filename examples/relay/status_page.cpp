#include "status_page.hpp"

#include <cstdio>
#include <string_view>
#include <utility>

namespace relaycore::examples {

// The page, from status_page.html (embedded by CMake, see examples/CMakeLists.txt).
extern const char kStatusPageHtml[];

namespace {

// The page's scripts and styles are inline and it fetches only from this relay; the browser
// enforces it, so the page cannot load anything from elsewhere even if an operator's NIP-11
// text held markup.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// The latency histogram of the samples recorded between two snapshots.
LatencyHistogram between(const LatencyHistogram& before, const LatencyHistogram& after) {
  LatencyHistogram d;
  for (std::size_t i = 0; i < d.counts.size(); ++i)
    d.counts[i] = after.counts[i] - before.counts[i];
  d.count = after.count - before.count;
  d.sum_us = after.sum_us - before.sum_us;
  return d;
}

void append_number(std::string& out, double value) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%.3f", value);
  out.append(buf, static_cast<std::size_t>(n));
}

void append_number(std::string& out, std::optional<double> value) {
  if (value) {
    append_number(out, *value);
  } else {
    out.append("null");
  }
}

void append_number(std::string& out, std::uint64_t value) { out.append(std::to_string(value)); }

void append_number(std::string& out, std::int64_t value) { out.append(std::to_string(value)); }

}  // namespace

StatusPage::StatusPage(const Relay& relay)
    : relay_(relay),
      started_(std::chrono::steady_clock::now()),
      sampler_([this](std::stop_token stop) { run(std::move(stop)); }) {}

std::int64_t StatusPage::uptime_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               started_)
      .count();
}

void StatusPage::run(std::stop_token stop) {
  RelayStats before = relay_.stats();
  std::int64_t before_ms = uptime_ms();
  std::unique_lock lock(mu_);
  for (;;) {
    // A sleep that the destructor (a stop request) cuts short.
    wake_.wait_for(lock, stop, kInterval, [] { return false; });
    if (stop.stop_requested()) return;
    lock.unlock();
    const RelayStats now = relay_.stats();
    const std::int64_t now_ms = uptime_ms();
    const double seconds = static_cast<double>(now_ms - before_ms) / 1000.0;
    Sample s;
    s.uptime_ms = now_ms;
    if (seconds > 0) {
      s.ingest_per_s = static_cast<double>(now.frames_event - before.frames_event) / seconds;
      s.deliveries_per_s =
          static_cast<double>(now.events_delivered - before.events_delivered) / seconds;
    }
    const LatencyHistogram ok = between(before.ack_latency, now.ack_latency);
    if (ok.count > 0) {
      s.ok_p50_ms = static_cast<double>(ok.percentile_us(0.5)) / 1000.0;
      s.ok_p99_ms = static_cast<double>(ok.percentile_us(0.99)) / 1000.0;
    }
    s.connections = now.sessions_open;
    s.subscriptions = now.subscriptions_open;
    before = now;
    before_ms = now_ms;
    lock.lock();
    history_.push_back(s);
    if (history_.size() > kHistory) history_.pop_front();
  }
}

std::string StatusPage::history_json() const {
  std::lock_guard lock(mu_);
  std::string out = "{\"interval_ms\":" + std::to_string(kInterval.count());
  auto column = [&](const char* name, auto field) {
    out.append(",\"").append(name).append("\":[");
    bool first = true;
    for (const Sample& s : history_) {
      if (!first) out.push_back(',');
      first = false;
      append_number(out, s.*field);
    }
    out.push_back(']');
  };
  column("uptime_ms", &Sample::uptime_ms);
  column("ingest_per_s", &Sample::ingest_per_s);
  column("ok_p50_ms", &Sample::ok_p50_ms);
  column("ok_p99_ms", &Sample::ok_p99_ms);
  column("connections", &Sample::connections);
  column("subscriptions", &Sample::subscriptions);
  column("deliveries_per_s", &Sample::deliveries_per_s);
  out.push_back('}');
  return out;
}

std::string StatusPage::json() const {
  std::string out = "{\"info\":";
  out.append(relay_.info_document());
  out.append(",\"uptime_ms\":").append(std::to_string(uptime_ms()));
  out.append(",\"stats\":").append(stats_json(relay_.stats()));
  out.append(",\"history\":").append(history_json());
  out.push_back('}');
  return out;
}

std::optional<websocket::HttpResponse> StatusPage::serve(
    const websocket::HttpRequest& request) const {
  if (request.method != "GET") return std::nullopt;
  const std::string_view target = request.target;
  websocket::HttpResponse r;
  r.headers.emplace_back("Cache-Control", "no-store");
  if (target == "/status.json") {
    r.content_type = "application/json";
    r.body = json();
    return r;
  }
  if (target != "/" && target.substr(0, 2) != "/?") return std::nullopt;
  const std::string accept = request.header("accept");
  if (contains(accept, "application/nostr+json") || !contains(accept, "text/html")) {
    return std::nullopt;
  }
  r.content_type = "text/html; charset=utf-8";
  r.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.body = kStatusPageHtml;
  return r;
}

}  // namespace relaycore::examples
