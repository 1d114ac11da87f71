// relaycore-bench-req: REQ -> EOSE latency on a 1,000,000-event SQLite store. The
// events are generated and signed once and cached as JSON lines (--cache), loaded once into a
// SQLite file (--db), and then each filter shape is sent as a REQ through an in-memory session
// of a real Relay, one at a time, timing the REQ from on_message() to the EOSE frame. The goal:
// p99 <= 5 ms for the author+kind limit-100 filter.
//
// With --ties, a second store of as many events is built too (--ties-cache, --ties-db), every
// event with one created_at (8 authors, kind 1, one t tag), and three shapes are timed on both
// stores in the same run, interleaved: author+kind limit 100, #t limit 100, kind limit 500. A
// store whose indexes end at created_at sorts the whole tie group for each of them.
//
//   relaycore-bench-req [--events N] [--cache FILE] [--db FILE] [--queries Q] [--reload]
//                       [--ties] [--ties-cache FILE] [--ties-db FILE]
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bench_corpus.hpp"
#include "bench_req_store.hpp"
#include "relaycore/relay.hpp"

namespace {

struct Flags {
  std::size_t events = 1000000;
  std::string cache = "relaycore-bench-req-events.jsonl";
  std::string db = "relaycore-bench-req.db";
  std::size_t queries = 1000;
  bool reload = false;
  bool ties = false;
  std::string ties_cache = "relaycore-bench-req-ties-events.jsonl";
  std::string ties_db = "relaycore-bench-req-ties.db";
};

// Records when the EOSE (or CLOSED) of the current REQ arrives.
class EoseConnection : public relaycore::Connection {
 public:
  void send(relaycore::Frame frame) override {
    const std::string_view head = frame.parts()[0];
    if (head.starts_with("[\"EVENT\"")) {
      events_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (head.starts_with("[\"EOSE\"") || head.starts_with("[\"CLOSED\"")) {
      std::lock_guard lock(mu_);
      done_ = true;
      closed_ = head.starts_with("[\"CLOSED\"");
      at_ = bench::Clock::now();
      cv_.notify_all();
    }
  }
  void close(std::string_view) override {}
  std::size_t queued_bytes() const override { return 0; }

  // Sends the REQ and returns (milliseconds to EOSE, EVENT frames before it).
  std::pair<double, std::size_t> request(relaycore::Session& session, const std::string& req) {
    {
      std::lock_guard lock(mu_);
      done_ = false;
    }
    events_.store(0);
    const auto start = bench::Clock::now();
    session.on_message(req);
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(30), [&] { return done_; })) {
      bench::die("no EOSE within 30 s for " + req);
    }
    if (closed_) bench::die("the relay refused " + req);
    return {std::chrono::duration<double, std::milli>(at_ - start).count(), events_.load()};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool closed_ = false;
  bench::Clock::time_point at_;
  std::atomic<std::size_t> events_{0};
};

struct Shape {
  std::string name;
  std::string key;
  std::function<std::string(std::size_t)> filter;
};

// A relay on one store, with one session to send REQs through.
struct ReqTarget {
  std::unique_ptr<relaycore::Relay> relay;
  std::shared_ptr<EoseConnection> conn = std::make_shared<EoseConnection>();
  std::shared_ptr<relaycore::Session> session;

  explicit ReqTarget(const std::string& db) {
    relaycore::Options options;
    options.sqlite.path = db;
    options.verify_threads = 1;
    options.purge_interval_seconds = 0;
    auto opened = relaycore::Relay::open(std::move(options));
    if (!opened) bench::die("Relay::open: " + opened.error().message());
    relay = std::move(opened).value();
    session = relay->open_session(conn, relaycore::ClientInfo{"127.0.0.1:1", {}});
  }
  ~ReqTarget() {
    session->on_close();
    bench::shutdown_or_die(*relay);
  }
  ReqTarget(const ReqTarget&) = delete;
  ReqTarget& operator=(const ReqTarget&) = delete;

  // Milliseconds to EOSE and events served for one REQ, closed after.
  std::pair<double, std::size_t> request(const std::string& filter) {
    auto result = conn->request(*session, R"(["REQ","q",)" + filter + "]");
    session->on_message(R"(["CLOSE","q"])");
    return result;
  }
};

// One shape on one store.
struct Run {
  ReqTarget* target;
  Shape shape;
};

// Times every run `queries` times after a warm-up (the first queries fault the database pages
// into the OS cache), and prints p50, p99 and max for each, with a RESULT line per quantile.
// Runs are interleaved query by query, so machine noise falls on all of them alike.
void time_runs(const std::string& title, const std::vector<Run>& runs, std::size_t queries) {
  for (std::size_t i = 0; i < 200; ++i) {
    for (const Run& r : runs) r.target->request(r.shape.filter(i + 100000));
  }
  std::vector<std::vector<double>> ms(runs.size());
  std::vector<std::size_t> returned(runs.size());
  for (std::size_t i = 0; i < queries; ++i) {
    for (std::size_t k = 0; k < runs.size(); ++k) {
      auto [t, n] = runs[k].target->request(runs[k].shape.filter(i));
      ms[k].push_back(t);
      returned[k] += n;
    }
  }
  std::printf("\n%s (%zu queries per shape, one at a time):\n", title.c_str(), queries);
  std::printf("  %-34s %10s %10s %10s %12s\n", "filter", "p50 ms", "p99 ms", "max ms",
              "events/REQ");
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const double p50 = bench::quantile(ms[k], 0.5);
    const double p99 = bench::quantile(ms[k], 0.99);
    std::printf("  %-34s %10.3f %10.3f %10.3f %12.1f\n", runs[k].shape.name.c_str(), p50, p99,
                ms[k].back(), static_cast<double>(returned[k]) / static_cast<double>(queries));
    bench::print_result("req_" + runs[k].shape.key + "_p50_ms", p50);
    bench::print_result("req_" + runs[k].shape.key + "_p99_ms", p99);
  }
}

std::string pick(const std::vector<std::string>& v, std::size_t i) {
  return v[(i * 7919) % v.size()];
}

Shape author_kind_shape(const bench::ReqTargets& targets, const std::string& name,
                        const std::string& key) {
  return {name, key, [&targets](std::size_t i) {
            return R"({"authors":[")" + pick(targets.authors, i) + R"("],"kinds":[1],"limit":100})";
          }};
}

// The shapes compared between the spread store and the tied one, for the store `targets`
// describes; `store` names it in the output. The last, a list of authors, is served by merging
// one scan per author.
std::vector<Shape> tie_shapes(const bench::ReqTargets& targets, const std::string& store) {
  const std::string tag = R"({"#t":[")" + targets.t_value + R"("],"limit":100})";
  return {
      author_kind_shape(targets, store + ": author+kind 1, limit 100", store + "_author_kind"),
      {store + ": #t, limit 100", store + "_tag_t", [tag](std::size_t) { return tag; }},
      {store + ": kind 1, limit 500", store + "_kind_500",
       [](std::size_t) { return std::string(R"({"kinds":[1],"limit":500})"); }},
      {store + ": 8 authors, limit 100", store + "_authors_8",
       [&targets](std::size_t i) {
         std::set<std::string> authors;
         for (std::size_t k = i; authors.size() < 8; ++k) authors.insert(pick(targets.authors, k));
         std::string list;
         for (const std::string& a : authors) list += (list.empty() ? "\"" : ",\"") + a + "\"";
         return R"({"authors":[)" + list + R"(],"limit":100})";
       }},
  };
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&] { return bench::flag_value(argc, argv, i); };
    if (arg == "--events") {
      flags.events = std::stoul(value());
    } else if (arg == "--cache") {
      flags.cache = value();
    } else if (arg == "--db") {
      flags.db = value();
    } else if (arg == "--queries") {
      flags.queries = std::stoul(value());
    } else if (arg == "--reload") {
      flags.reload = true;
    } else if (arg == "--ties") {
      flags.ties = true;
    } else if (arg == "--ties-cache") {
      flags.ties_cache = value();
    } else if (arg == "--ties-db") {
      flags.ties_db = value();
    } else {
      bench::die("unknown flag " + arg +
                 " (flags: --events N --cache FILE --db FILE --queries Q --reload --ties"
                 " --ties-cache FILE --ties-db FILE)");
    }
  }

  const bench::ReqTargets targets = bench::prepare_store(
      flags.cache, flags.db, flags.events, flags.reload, bench::spread_corpus(flags.events));
  bench::ReqTargets tied;
  if (flags.ties) {
    tied = bench::prepare_store(flags.ties_cache, flags.ties_db, flags.events, flags.reload,
                                bench::tied_corpus());
  }

  const std::int64_t span = targets.last_created - targets.first_created;
  ReqTarget spread(flags.db);
  std::vector<Run> runs;
  for (Shape& shape : std::vector<Shape>{
           {"by id", "id",
            [&](std::size_t i) { return R"({"ids":[")" + pick(targets.ids, i) + "\"]}"; }},
           {"author, limit 100", "author",
            [&](std::size_t i) {
              return R"({"authors":[")" + pick(targets.authors, i) + R"("],"limit":100})";
            }},
           author_kind_shape(targets, "author+kind 1, limit 100", "author_kind"),
           {"kind 7, limit 100", "kind",
            [&](std::size_t i) {
              // A page of reactions ending at a random point in time (paging back through
              // history).
              const std::int64_t until =
                  targets.first_created +
                  static_cast<std::int64_t>((i * 7919) % static_cast<std::size_t>(span));
              return R"({"kinds":[7],"until":)" + std::to_string(until) + R"(,"limit":100})";
            }},
           {"#e (thread), no limit", "tag_e",
            [&](std::size_t i) { return R"({"#e":[")" + pick(targets.e_values, i) + "\"]}"; }},
           {"#p, limit 100", "tag_p",
            [&](std::size_t i) {
              return R"({"#p":[")" + pick(targets.p_values, i) + R"("],"limit":100})";
            }},
           {"since/until 1 h window", "window",
            [&](std::size_t i) {
              const std::int64_t since =
                  targets.first_created +
                  static_cast<std::int64_t>((i * 7919) % static_cast<std::size_t>(span - 3600));
              return R"({"since":)" + std::to_string(since) + R"(,"until":)" +
                     std::to_string(since + 3600) + "}";
            }},
       }) {
    runs.push_back({&spread, std::move(shape)});
  }
  time_runs("REQ -> EOSE on " + std::to_string(flags.events) + " events", runs, flags.queries);

  if (flags.ties) {
    ReqTarget one_time(flags.ties_db);
    runs.clear();
    std::vector<Shape> spread_shapes = tie_shapes(targets, "spread");
    std::vector<Shape> tied_shapes = tie_shapes(tied, "tied");
    for (std::size_t k = 0; k < spread_shapes.size(); ++k) {
      runs.push_back({&spread, spread_shapes[k]});
      runs.push_back({&one_time, tied_shapes[k]});
    }
    time_runs("REQ -> EOSE, " + std::to_string(flags.events) +
                  " events spread over a year vs all at one created_at",
              runs, flags.queries);
  }
  return 0;
}
