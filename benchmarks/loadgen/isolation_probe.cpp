// probe: healthy clients, each on its own connection and thread, doing one thing at a time in
// turn: publish an event (time to its OK), REQ one stored event by id (time to EOSE), REQ the
// newest 10 of a stored author (time to EOSE), with a pause between. The stored ids and authors
// come from a REQ for events dated over an hour ago (the seeded ones) before timing starts.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "bench_corpus.hpp"
#include "isolation.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/websocket/client.hpp"

namespace relaycore::isolation {
namespace {

constexpr const char* kUsage =
    "usage: relaycore-bench-isolation probe --url URL [flags]\n"
    "  --url URL            the relay (ws://127.0.0.1:PORT)\n"
    "  --seconds S          how long to measure (default 10)\n"
    "  --connections C      probe connections, one thread each (default 4)\n"
    "  --interval-ms I      pause after each operation (default 20)\n"
    "  --timeout-ms T       an operation unanswered this long counts as a timeout (default 5000)\n";

struct ProbeConfig {
  std::string url;
  std::size_t seconds = 10, connections = 4, interval_ms = 20, timeout_ms = 5000;
};

// What one connection measured.
struct Samples {
  std::vector<double> ok_ms, req_id_ms, req_author_ms;
  std::size_t timeouts = 0, errors = 0, events = 0;
  std::string first_error;
  void error(const std::string& what) {
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

// The stored events the probes ask for.
struct Targets {
  std::vector<std::string> ids, authors;
};

Targets discover(const std::string& url, std::size_t timeout_ms) {
  std::unique_ptr<websocket::Client> c = connect_or_die(url);
  const auto until = static_cast<std::int64_t>(std::time(nullptr)) - 3600;
  if (!c->send_text("[\"REQ\",\"discover\",{\"until\":" + std::to_string(until) +
                    ",\"limit\":200}]")) {
    bench::die("discover: send failed");
  }
  Targets t;
  for (;;) {
    Result<std::string> text = c->receive_text(std::chrono::milliseconds(timeout_ms * 4));
    if (!text) bench::die("discover: " + text.error().message());
    if (text->starts_with("[\"EOSE\"")) break;
    if (!text->starts_with("[\"EVENT\"")) bench::die("discover: " + text->substr(0, 200));
    t.ids.emplace_back(hex_after(*text, "{\"id\":\""));
    const std::string author(hex_after(*text, "\"pubkey\":\""));
    if (std::find(t.authors.begin(), t.authors.end(), author) == t.authors.end()) {
      t.authors.push_back(author);
    }
  }
  c->close();
  if (t.ids.empty()) bench::die("discover: the store has no events dated over an hour ago");
  return t;
}

// Signs the events one connection may publish, before timing.
std::vector<EventPtr> sign_events(std::size_t n, std::size_t connection) {
  const Keypair key = Keypair::generate();
  std::vector<EventPtr> out;
  for (std::size_t i = 0; i < n; ++i) {
    EventDraft draft;
    draft.created_at = static_cast<std::int64_t>(std::time(nullptr));
    draft.tags = {Tag{"t", "probe"}};
    draft.content = "isolation probe " + std::to_string(connection) + "." + std::to_string(i);
    Result<EventPtr> e = sign_event(key, std::move(draft));
    if (!e) bench::die("sign: " + e.error().message());
    out.push_back(std::move(e).value());
  }
  return out;
}

class ProbeConnection {
 public:
  ProbeConnection(const ProbeConfig& config, const Targets& targets, std::size_t index)
      : config_(config),
        targets_(targets),
        index_(index),
        rng_(index),
        events_(sign_events(
            config.seconds * 1000 / std::max<std::size_t>(1, config.interval_ms) / 3 + 16, index)),
        client_(connect_or_die(config.url)) {}

  // Runs operations in turn until `end`; the first one starts at `first`.
  void run(Clock::time_point first, Clock::time_point end) {
    std::this_thread::sleep_until(first);
    for (std::size_t n = 0; Clock::now() < end && alive_; ++n) {
      switch (n % 3) {
        case 0:
          publish();
          break;
        case 1:
          req("{\"ids\":[\"" + pick(targets_.ids) + "\"]}", samples_.req_id_ms);
          break;
        default:
          req("{\"authors\":[\"" + pick(targets_.authors) + "\"],\"limit\":10}",
              samples_.req_author_ms);
          break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(config_.interval_ms));
    }
  }
  const Samples& samples() const { return samples_; }

 private:
  const std::string& pick(const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng_)];
  }

  void publish() {
    if (next_event_ >= events_.size()) return;
    const EventPtr& e = events_[next_event_++];
    const std::string ok = "[\"OK\",\"" + std::string(e->id_hex()) + "\",";
    const Clock::time_point t0 = Clock::now();
    if (!send("[\"EVENT\"," + std::string(e->json()) + "]")) return;
    wait_for(
        t0,
        [&](const std::string& text) {
          if (!text.starts_with(ok)) return false;
          if (text.compare(ok.size(), 4, "true") != 0) samples_.error(text.substr(0, 200));
          return true;
        },
        samples_.ok_ms);
  }

  void req(const std::string& filter, std::vector<double>& into) {
    const std::string sub = "p" + std::to_string(index_) + "-" + std::to_string(++next_sub_);
    const std::string eose = "[\"EOSE\",\"" + sub + "\"]";
    const std::string closed = "[\"CLOSED\",\"" + sub + "\"";
    const Clock::time_point t0 = Clock::now();
    if (!send("[\"REQ\",\"" + sub + "\"," + filter + "]")) return;
    const bool answered = wait_for(
        t0,
        [&](const std::string& text) {
          if (text.starts_with("[\"EVENT\"")) ++samples_.events;
          if (text.starts_with(closed)) samples_.error(text.substr(0, 200));
          return text == eose || text.starts_with(closed);
        },
        into);
    if (answered) send("[\"CLOSE\",\"" + sub + "\"]");
  }

  bool send(const std::string& frame) {
    if (Status s = client_->send_text(frame); !s) {
      samples_.error("send: " + s.message());
      alive_ = false;
    }
    return alive_;
  }

  // Reads until `done` accepts a message and records the time since `t0` into `into`; a
  // timeout is recorded as the timeout. False when the answer did not come.
  template <typename Done>
  bool wait_for(Clock::time_point t0, Done done, std::vector<double>& into) {
    const auto limit = t0 + std::chrono::milliseconds(config_.timeout_ms);
    for (;;) {
      // Rounded up, so that a timeout is never taken for an error.
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(limit - Clock::now());
      if (left.count() <= 0) break;
      Result<std::string> text = client_->receive_text(left);
      if (!text) {
        if (Clock::now() < limit) {
          samples_.error("receive: " + text.error().message());
          alive_ = false;
          return false;
        }
        break;
      }
      if (done(*text)) {
        into.push_back(ms_since(t0));
        return true;
      }
    }
    ++samples_.timeouts;
    into.push_back(static_cast<double>(config_.timeout_ms));
    return false;
  }

  const ProbeConfig& config_;
  const Targets& targets_;
  const std::size_t index_;
  std::mt19937_64 rng_;
  std::vector<EventPtr> events_;
  std::unique_ptr<websocket::Client> client_;
  std::size_t next_event_ = 0, next_sub_ = 0;
  bool alive_ = true;
  Samples samples_;
};

}  // namespace

int run_probe(int argc, char** argv) {
  ProbeConfig c;
  FlagReader(argc, argv, kUsage).read([&](const std::string& flag, const std::string& v) {
    if (flag == "--url") {
      c.url = v;
    } else if (flag == "--seconds") {
      c.seconds = to_count(flag, v);
    } else if (flag == "--connections") {
      c.connections = std::max<std::size_t>(1, to_count(flag, v));
    } else if (flag == "--interval-ms") {
      c.interval_ms = to_count(flag, v);
    } else if (flag == "--timeout-ms") {
      c.timeout_ms = std::max<std::size_t>(1, to_count(flag, v));
    } else {
      return false;
    }
    return true;
  });
  if (c.url.empty()) FlagReader(argc, argv, kUsage).print_usage_and_exit(2);

  const Targets targets = discover(c.url, c.timeout_ms);
  std::vector<std::unique_ptr<ProbeConnection>> probes;
  for (std::size_t i = 0; i < c.connections; ++i) {
    probes.push_back(std::make_unique<ProbeConnection>(c, targets, i));
  }
  // Starts spread over one interval, so the connections do not move in step.
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(10);
  const Clock::time_point end = start + std::chrono::seconds(c.seconds);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const auto offset = std::chrono::microseconds(c.interval_ms * 1000 * i / probes.size());
    threads.emplace_back([&, i, offset] { probes[i]->run(start + offset, end); });
  }
  for (std::thread& t : threads) t.join();

  Samples all;
  for (const auto& p : probes) {
    const Samples& s = p->samples();
    all.ok_ms.insert(all.ok_ms.end(), s.ok_ms.begin(), s.ok_ms.end());
    all.req_id_ms.insert(all.req_id_ms.end(), s.req_id_ms.begin(), s.req_id_ms.end());
    all.req_author_ms.insert(all.req_author_ms.end(), s.req_author_ms.begin(),
                             s.req_author_ms.end());
    all.timeouts += s.timeouts;
    all.errors += s.errors;
    all.events += s.events;
    if (all.first_error.empty()) all.first_error = s.first_error;
  }
  std::vector<double> req_ms = all.req_id_ms;
  req_ms.insert(req_ms.end(), all.req_author_ms.begin(), all.req_author_ms.end());
  std::printf(
      "{\"seconds\":%zu,\"connections\":%zu,\"targets\":%zu,\"ok_ms\":%s,\"req_id_ms\":%s,"
      "\"req_author_ms\":%s,\"req_ms\":%s,\"events\":%zu,\"timeouts\":%zu,\"errors\":%zu,"
      "\"first_error\":%s}\n",
      c.seconds, c.connections, targets.ids.size(), latency_json(all.ok_ms).c_str(),
      latency_json(all.req_id_ms).c_str(), latency_json(all.req_author_ms).c_str(),
      latency_json(req_ms).c_str(), all.events, all.timeouts, all.errors,
      json_string(all.first_error).c_str());
  return 0;
}

}  // namespace relaycore::isolation
