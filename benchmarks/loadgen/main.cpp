// relaycore-loadgen: publishes pre-signed events over WebSocket from C connections, closed loop
// (W EVENTs in flight per connection) or open loop (a fixed offered rate), while S subscribers
// hold a REQ that matches them (and M idle subscribers one that matches none), and reports
// events/s, ack latency (EVENT sent to OK) and first-delivery latency (EVENT sent to the first
// EVENT frame at any subscriber). See `relaycore-loadgen --help` and benchmarks/README.md.
#include <csignal>
#include <cstdio>
#include <random>
#include <thread>

#include "loadgen.hpp"
#include "subscriber_process.hpp"
#include "ws_peer.hpp"

namespace relaycore::loadgen {
namespace {

using namespace std::chrono_literals;

// Open loop sends what has come due on every tick.
constexpr auto kTick = 200us;

struct Run {
  Config config;
  EventTable* table = nullptr;
  Counters counters;
};

// A publishing connection: sends EVENTs, times their OKs.
class Publisher : public std::enable_shared_from_this<Publisher> {
 public:
  Publisher(asio::io_context& io, Run& run, const websocket::detail::WsUrl& url)
      : run_(run), timer_(io) {
    peer_ = std::make_shared<WsPeer>(
        io, url,
        WsPeer::Callbacks{[this](const Status& s) { on_open(s); },
                          [this](std::string_view text) { on_text(text); },
                          [this](const std::string& why) { on_error(why); }});
  }
  void connect() { peer_->start(); }
  bool ready() const { return ready_.load(); }
  asio::any_io_executor executor() { return timer_.get_executor(); }
  // Starts publishing (posted to the io thread by main).
  void go() {
    if (!peer_->open()) return;
    started_ = Clock::now();
    if (run_.config.rate > 0) {
      tick();
    } else {
      for (std::size_t i = 0; i < run_.config.window; ++i) send_one();
    }
  }

 private:
  void on_open(const Status& s) {
    if (!s) return on_error(s.message());
    ready_ = true;
  }
  void on_error(const std::string& why) {
    run_.counters.connection_errors.fetch_add(1);
    run_.counters.note_error("publisher: " + why);
  }
  bool send_one() {
    const std::size_t i = run_.counters.next_event.fetch_add(1);
    if (i >= run_.table->size()) return false;
    run_.table->sent(i).store(now_ns());
    peer_->send_text(run_.table->frame(i));
    ++sent_;
    return true;
  }
  void tick() {
    // This connection's share of the offered rate, scheduled from when it started.
    const double per_conn = run_.config.rate / static_cast<double>(run_.config.publishers);
    const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
    const auto due = static_cast<std::size_t>(elapsed * per_conn) + 1;
    while (sent_ < due) {
      if (!send_one()) return;
    }
    timer_.expires_after(kTick);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->tick();
    });
  }
  void on_text(std::string_view text) {
    const std::string_view id = id_after(text, "[\"OK\",\"");
    std::optional<std::size_t> i = run_.table->find(id);
    if (!i) {
      run_.counters.unknown_frames.fetch_add(1);
      return;
    }
    run_.table->acked(*i).store(now_ns());
    if (text.substr(7 + 64, 7) == "\",true,") {
      run_.counters.ok.fetch_add(1);
    } else {
      run_.counters.rejected.fetch_add(1);
      run_.counters.note_error("rejected: " + std::string(text.substr(0, 200)));
    }
    if (run_.config.rate <= 0) send_one();
  }

  Run& run_;
  asio::steady_timer timer_;
  std::shared_ptr<WsPeer> peer_;
  std::atomic<bool> ready_{false};
  Clock::time_point started_;
  std::size_t sent_ = 0;
};

websocket::detail::WsUrl url_or_exit(const std::string& url) {
  Result<websocket::detail::WsUrl> parsed = websocket::detail::parse_ws_url(url);
  if (!parsed) {
    std::fprintf(stderr, "relaycore-loadgen: %s\n", parsed.error().message().c_str());
    std::exit(2);
  }
  return parsed.value();
}

// Waits until `done` holds or `limit` passes; false on timeout.
template <typename Pred>
bool wait_for(Pred done, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

Report collect(Run& run, std::int64_t start_ns, const std::vector<Arrival>& arrivals,
               std::size_t deliveries, std::int64_t last_delivery_ns) {
  Report r;
  EventTable& t = *run.table;
  std::vector<double> ack, delivery, all;
  std::vector<const Arrival*> arrival_of(t.size(), nullptr);
  for (const Arrival& a : arrivals) {
    if (std::optional<std::size_t> i = t.find_prefix(a.id_prefix)) arrival_of[*i] = &a;
  }
  std::int64_t last_ack = start_ns;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const std::int64_t sent = t.sent(i).load();
    if (sent == 0) continue;
    ++r.events;
    const std::int64_t acked = t.acked(i).load();
    if (acked == 0) {
      ++r.timeouts;
      continue;
    }
    last_ack = std::max(last_ack, acked);
    ack.push_back(static_cast<double>(acked - sent) / 1e6);
    if (const Arrival* a = arrival_of[i]) {
      delivery.push_back(static_cast<double>(a->first_ns - sent) / 1e6);
      if (a->count >= run.config.subscribers) {
        all.push_back(static_cast<double>(a->last_ns - sent) / 1e6);
      }
    }
  }
  r.ok = run.counters.ok.load();
  r.rejected = run.counters.rejected.load();
  r.deliveries = deliveries;
  r.connection_errors = run.counters.connection_errors.load();
  r.seconds = static_cast<double>(last_ack - start_ns) / 1e9;
  r.events_per_s = r.seconds > 0 ? static_cast<double>(r.ok) / r.seconds : 0;
  r.offered_rate = run.config.rate;
  r.ack = percentiles(ack);
  r.first_delivery = percentiles(delivery);
  if (run.config.subscribers > 0) {
    // An event counts as delivered only when every matching subscriber got it.
    r.undelivered = r.ok - std::min(r.ok, all.size());
    r.all_delivered = percentiles(all);
    const double span = static_cast<double>(last_delivery_ns - start_ns) / 1e9;
    if (span > 0) {
      r.delivered_frames_per_s = static_cast<double>(r.deliveries) / span;
      r.delivered_events_per_s =
          r.delivered_frames_per_s / static_cast<double>(run.config.subscribers);
    }
  }
  std::lock_guard lock(run.counters.mu);
  r.first_error = run.counters.first_error;
  return r;
}

int run_main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Run run;
  run.config = parse_config(argc, argv);
  const Config& c = run.config;
  if (c.role == "subscribers") return run_subscriber_role(c);
  const websocket::detail::WsUrl pub_url = url_or_exit(c.url);
  const websocket::detail::WsUrl sub_url = url_or_exit(c.sub_url);

  std::mt19937_64 rng(std::random_device{}());
  const std::string tag = "lg" + std::to_string(rng());
  if (!c.json) std::fprintf(stderr, "signing %zu events with %zu keys...\n", c.events, c.keys);
  EventTable table(c, tag);
  run.table = &table;

  IoThreads io_threads(c.threads);
  auto io = [&]() -> asio::io_context& { return io_threads.next(); };

  // Subscribers first, in their own process: every REQ must have its EOSE before the first
  // EVENT goes out.
  SubscriberProcess subscribers;
  const bool subscribing = c.subscribers + c.idle_subscribers > 0;
  if (subscribing && !subscribers.start(argv[0], c, tag)) return 1;
  std::vector<std::shared_ptr<Publisher>> publishers;
  for (std::size_t i = 0; i < c.publishers; ++i) {
    asio::io_context& ctx = io();
    publishers.push_back(std::make_shared<Publisher>(ctx, run, pub_url));
    asio::post(ctx, [p = publishers.back()] { p->connect(); });
  }
  wait_for(
      [&] {
        return std::all_of(publishers.begin(), publishers.end(),
                           [](const auto& p) { return p->ready(); }) ||
               run.counters.connection_errors.load() > 0;
      },
      30s);

  // A sentinel for scripts that start another load once this one is under way.
  std::fputs("publishing\n", stderr);
  std::fflush(stderr);
  const std::int64_t start = now_ns();
  for (const auto& p : publishers) asio::post(p->executor(), [p] { p->go(); });
  // Done when every event has its OK, or `timeout_ms` after the last send.
  std::int64_t last_progress = now_ns();
  std::size_t last_answered = 0;
  for (;;) {
    std::this_thread::sleep_for(2ms);
    const std::size_t answered = run.counters.ok.load() + run.counters.rejected.load();
    if (answered == c.events) break;
    if (answered != last_answered || run.counters.next_event.load() < c.events) {
      last_answered = answered;
      last_progress = now_ns();
    }
    if (now_ns() - last_progress > static_cast<std::int64_t>(c.timeout_ms) * 1000000) break;
  }
  // Deliveries trail their OK (deferred dispatch): the subscriber process waits for them.
  std::size_t deliveries = 0;
  std::int64_t last_delivery_ns = 0;
  std::vector<Arrival> arrivals;
  if (subscribing) {
    arrivals =
        subscribers.finish(c.subscribers * run.counters.ok.load(), deliveries, last_delivery_ns);
  }
  // Stop the io threads before reading the tables; connections are dropped without a close
  // handshake (their pending handlers go with the io_contexts).
  io_threads.stop();
  print_report(c, collect(run, start, arrivals, deliveries, last_delivery_ns));
  publishers.clear();
  return 0;
}

}  // namespace
}  // namespace relaycore::loadgen

int main(int argc, char** argv) { return relaycore::loadgen::run_main(argc, argv); }
