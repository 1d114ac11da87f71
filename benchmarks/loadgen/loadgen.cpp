#include "loadgen.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>

#include "relaycore/keys.hpp"

namespace relaycore::loadgen {
namespace {

constexpr const char* kUsage =
    "usage: relaycore-loadgen [flags]\n"
    "  --url URL             publishers' relay (default ws://127.0.0.1:7777)\n"
    "  --sub-url URL         subscribers' relay (default: --url)\n"
    "  --events N            events to publish, pre-signed before timing (default 20000)\n"
    "  --keys K              signing keys (default 16)\n"
    "  --content-size B      content bytes per event (default 100)\n"
    "  --connections C       publishing connections (default 4)\n"
    "  --subscribers S       connections whose REQ matches every event (default 1)\n"
    "  --idle-subscribers M  connections whose REQ matches none (default 0)\n"
    "  --window W            closed loop: EVENTs in flight per connection (default 16)\n"
    "  --rate R              open loop: offered events/s over all connections (default: closed)\n"
    "  --threads T           I/O threads (default 2)\n"
    "  --timeout-ms MS       an EVENT without OK this long after the last send times out\n"
    "                        (default 10000)\n"
    "  --json                one JSON object instead of the human-readable report\n"
    "  --role subscribers    (internal) be the subscriber process of a run on --tag\n";

[[noreturn]] void usage(const std::string& error) {
  if (!error.empty()) std::fprintf(stderr, "relaycore-loadgen: %s\n", error.c_str());
  std::fputs(kUsage, error.empty() ? stdout : stderr);
  std::exit(error.empty() ? 0 : 2);
}

std::size_t to_count(const std::string& flag, const std::string& v, std::size_t min) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < min)
    usage(flag + " wants a number >= " + std::to_string(min));
  return static_cast<std::size_t>(n);
}

double at(const std::vector<double>& sorted, double q) {
  const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))) - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

Config parse_config(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " wants a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      usage("");
    } else if (arg == "--url") {
      c.url = value();
    } else if (arg == "--sub-url") {
      c.sub_url = value();
    } else if (arg == "--events") {
      c.events = to_count(arg, value(), 1);
    } else if (arg == "--keys") {
      c.keys = to_count(arg, value(), 1);
    } else if (arg == "--content-size") {
      c.content_size = to_count(arg, value(), 0);
    } else if (arg == "--connections") {
      c.publishers = to_count(arg, value(), 1);
    } else if (arg == "--subscribers") {
      c.subscribers = to_count(arg, value(), 0);
    } else if (arg == "--idle-subscribers") {
      c.idle_subscribers = to_count(arg, value(), 0);
    } else if (arg == "--window") {
      c.window = to_count(arg, value(), 1);
    } else if (arg == "--rate") {
      c.rate = static_cast<double>(to_count(arg, value(), 1));
    } else if (arg == "--threads") {
      c.threads = to_count(arg, value(), 1);
    } else if (arg == "--timeout-ms") {
      c.timeout_ms = static_cast<std::uint32_t>(to_count(arg, value(), 1));
    } else if (arg == "--role") {
      c.role = value();
      if (c.role != "subscribers") usage("--role wants subscribers");
    } else if (arg == "--tag") {
      c.tag = value();
    } else if (arg == "--json") {
      c.json = true;
    } else {
      usage("unknown flag " + arg);
    }
  }
  if (c.sub_url.empty()) c.sub_url = c.url;
  return c;
}

std::uint64_t id_prefix(std::string_view hex) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 16 && i < hex.size(); ++i) {
    const char c = hex[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

EventTable::EventTable(const Config& config, const std::string& run_tag)
    : frames_(config.events),
      sent_(new std::atomic<std::int64_t>[config.events]),
      acked_(new std::atomic<std::int64_t>[config.events]) {
  std::vector<Keypair> keys;
  for (std::size_t k = 0; k < config.keys; ++k) keys.push_back(Keypair::generate());
  const auto created_at = static_cast<std::int64_t>(std::time(nullptr));
  std::vector<std::string> ids(config.events);
  auto sign_range = [&](std::size_t first, std::size_t step) {
    for (std::size_t i = first; i < config.events; i += step) {
      EventDraft draft;
      draft.created_at = created_at;
      draft.tags = {Tag{"t", run_tag}};
      draft.content = "loadgen " + std::to_string(i) + " ";
      draft.content.resize(std::max(config.content_size, draft.content.size()), 'x');
      Result<EventPtr> event = sign_event(keys[i % keys.size()], std::move(draft));
      if (!event) {
        std::fprintf(stderr, "relaycore-loadgen: sign: %s\n", event.error().message().c_str());
        std::exit(1);
      }
      frames_[i] = "[\"EVENT\"," + std::string((*event)->json()) + "]";
      ids[i] = std::string((*event)->id_hex());
    }
  };
  const std::size_t workers = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < workers; ++w) threads.emplace_back(sign_range, w, workers);
  for (std::thread& t : threads) t.join();
  for (std::size_t i = 0; i < config.events; ++i) {
    index_.emplace(id_prefix(ids[i]), i);
    sent_[i] = 0;
    acked_[i] = 0;
  }
}

std::optional<std::size_t> EventTable::find(std::string_view hex) const {
  if (hex.size() < 64) return std::nullopt;
  return find_prefix(id_prefix(hex));
}

std::optional<std::size_t> EventTable::find_prefix(std::uint64_t prefix) const {
  const auto it = index_.find(prefix);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

Percentiles percentiles(std::vector<double>& samples_ms) {
  Percentiles p;
  p.count = samples_ms.size();
  if (samples_ms.empty()) return p;
  std::sort(samples_ms.begin(), samples_ms.end());
  p.p50 = at(samples_ms, 0.50);
  p.p99 = at(samples_ms, 0.99);
  p.p999 = at(samples_ms, 0.999);
  return p;
}

void print_report(const Config& config, const Report& r) {
  if (config.json) {
    auto pct = [](const Percentiles& p) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"count\":%zu}",
                    p.p50, p.p99, p.p999, p.count);
      return std::string(buf);
    };
    std::string error;
    for (char ch : r.first_error) {
      if (ch == '"' || ch == '\\') error.push_back('\\');
      if (static_cast<unsigned char>(ch) >= 0x20) error.push_back(ch);
    }
    std::printf(
        "{\"mode\":\"%s\",\"events\":%zu,\"publishers\":%zu,\"window\":%zu,\"subscribers\":%zu,"
        "\"idle_subscribers\":%zu,\"offered_rate\":%.0f,\"seconds\":%.3f,\"events_per_s\":%.0f,"
        "\"ack_ms\":%s,\"first_delivery_ms\":%s,\"all_delivered_ms\":%s,\"ok\":%zu,\"rejected\":%"
        "zu,\"timeouts\":%zu,"
        "\"connection_errors\":%zu,\"deliveries\":%zu,\"undelivered\":%zu,"
        "\"delivered_events_per_s\":%.0f,\"delivered_frames_per_s\":%.0f,\"first_error\":\"%s\"}"
        "\n",
        config.rate > 0 ? "open" : "closed", r.events, config.publishers, config.window,
        config.subscribers, config.idle_subscribers, r.offered_rate, r.seconds, r.events_per_s,
        pct(r.ack).c_str(), pct(r.first_delivery).c_str(), pct(r.all_delivered).c_str(), r.ok,
        r.rejected, r.timeouts, r.connection_errors, r.deliveries, r.undelivered,
        r.delivered_events_per_s, r.delivered_frames_per_s, error.c_str());
    return;
  }
  if (config.rate > 0) {
    std::printf("open loop: %.0f events/s offered over %zu connections\n", config.rate,
                config.publishers);
  } else {
    std::printf("closed loop: %zu connections x %zu in flight\n", config.publishers, config.window);
  }
  std::printf("subscribers: %zu matching, %zu idle (non-matching REQ)\n", config.subscribers,
              config.idle_subscribers);
  std::printf("events:         %zu sent, %zu OK, %zu rejected, %zu timed out\n", r.events, r.ok,
              r.rejected, r.timeouts);
  std::printf("throughput:     %.0f events/s (OK true) over %.3f s\n", r.events_per_s, r.seconds);
  std::printf("ack latency:    p50 %.3f ms  p99 %.3f ms  p999 %.3f ms\n", r.ack.p50, r.ack.p99,
              r.ack.p999);
  std::printf("first delivery: p50 %.3f ms  p99 %.3f ms  p999 %.3f ms  (%zu delivered, %zu not)\n",
              r.first_delivery.p50, r.first_delivery.p99, r.first_delivery.p999,
              r.first_delivery.count, r.undelivered);
  std::printf("all delivered:  p50 %.3f ms  p99 %.3f ms  p999 %.3f ms\n", r.all_delivered.p50,
              r.all_delivered.p99, r.all_delivered.p999);
  std::printf(
      "deliveries:     %zu EVENT frames at subscribers (%.0f frames/s, %.0f events/s per "
      "subscriber)\n",
      r.deliveries, r.delivered_frames_per_s, r.delivered_events_per_s);
  std::printf("errors:         %zu connection errors%s%s\n", r.connection_errors,
              r.first_error.empty() ? "" : "; first: ", r.first_error.c_str());
}

}  // namespace relaycore::loadgen
