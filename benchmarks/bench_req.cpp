// relaycore-bench-req: REQ -> EOSE latency on a 1,000,000-event SQLite store (issue 5). The
// events are generated and signed once and cached as JSON lines (--cache), loaded once into a
// SQLite file (--db), and then each filter shape is sent as a REQ through an in-memory session
// of a real Relay, one at a time, timing the REQ from on_message() to the EOSE frame. The goal:
// p99 <= 5 ms for the author+kind limit-100 filter.
//
//   relaycore-bench-req [--events N] [--cache FILE] [--db FILE] [--queries Q] [--reload]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_corpus.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"

namespace {

namespace fs = std::filesystem;
using relaycore::EventPtr;

struct Flags {
  std::size_t events = 1000000;
  std::string cache = "relaycore-bench-req-events.jsonl";
  std::string db = "relaycore-bench-req.db";
  std::size_t queries = 1000;
  bool reload = false;
};

// 5,000 authors with a skewed share of the events (a few very active, most occasional), which
// gives about 200 events per author on average, as the SQLite planner statistics assume.
constexpr std::size_t kAuthors = 5000;
constexpr std::int64_t kSpanSeconds = 365 * 86400;

std::size_t skewed(bench::Generator& gen, std::size_t n) {
  const double u = static_cast<double>(gen.below(1000000)) / 1e6;
  return std::min(n - 1, static_cast<std::size_t>(static_cast<double>(n) * u * u));
}

// Kind mix of a social relay: notes, reactions, reposts, DMs, comments, zap receipts. No
// replaceable or ephemeral kinds, so every generated event is stored.
std::uint16_t pick_kind(bench::Generator& gen) {
  const std::size_t r = gen.below(100);
  if (r < 60) return 1;
  if (r < 80) return 7;
  if (r < 86) return 6;
  if (r < 91) return 4;
  if (r < 96) return 1111;
  return 9735;
}

// Events [begin, end) of the corpus. An event refers ("e") to a recent earlier event of the same
// chunk and mentions ("p") authors, popular ones more often.
void generate_chunk(std::size_t begin, std::size_t end, std::size_t total,
                    const std::vector<relaycore::Keypair>& keys, std::int64_t first,
                    std::vector<std::string>& out) {
  bench::Generator gen(0x5eed0000 + begin);
  std::vector<std::string> recent;
  for (std::size_t i = begin; i < end; ++i) {
    relaycore::EventDraft d;
    d.created_at = first + static_cast<std::int64_t>(static_cast<double>(i) /
                                                     static_cast<double>(total) * kSpanSeconds);
    d.kind = pick_kind(gen);
    const relaycore::Keypair& author = keys[skewed(gen, keys.size())];
    auto mention = [&] { return relaycore::to_hex(keys[skewed(gen, keys.size())].pubkey()); };
    auto refer = [&] {
      return recent.empty()
                 ? relaycore::to_hex(gen.bytes32())
                 : recent[recent.size() - 1 - gen.below(std::min<std::size_t>(recent.size(), 200))];
    };
    switch (d.kind) {
      case 1:
        if (gen.below(2) == 0) d.tags.push_back({"e", refer(), "", "reply"});
        for (std::size_t t = gen.below(3); t > 0; --t) d.tags.push_back({"p", mention()});
        if (gen.below(5) == 0) d.tags.push_back({"t", "nostr"});
        d.content = gen.content(80 + gen.below(200));
        break;
      case 7:
      case 6:
        d.tags = {{"e", refer()}, {"p", mention()}};
        d.content = d.kind == 7 ? "+" : "";
        break;
      case 4:
        d.tags = {{"p", mention()}};
        d.content = gen.content(120) + "?iv=" + relaycore::to_hex(gen.bytes32()).substr(0, 24);
        break;
      default:
        d.tags = {{"e", refer()}, {"p", mention()}};
        d.content = gen.content(60);
        break;
    }
    relaycore::Result<EventPtr> ev = relaycore::sign_event(author, std::move(d));
    if (!ev) bench::die("sign_event: " + ev.error().message());
    recent.emplace_back(ev.value()->id_hex());
    if (recent.size() > 1000) recent.erase(recent.begin(), recent.begin() + 500);
    out.emplace_back(ev.value()->json());
  }
}

// Signs the corpus on every core and writes it as JSON lines, through a temporary file so an
// interrupted run never leaves a short cache behind.
void generate_cache(const Flags& flags) {
  std::printf("generating and signing %zu events into %s (once)...\n", flags.events,
              flags.cache.c_str());
  std::fflush(stdout);
  const auto start = bench::Clock::now();
  bench::Generator gen(0xa07405);
  const std::vector<relaycore::Keypair> keys = gen.keys(kAuthors);
  const std::int64_t first = static_cast<std::int64_t>(std::time(nullptr)) - kSpanSeconds - 86400;
  const std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  const std::string tmp = flags.cache + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) bench::die("cannot write " + tmp);
  constexpr std::size_t kBlock = 50000;
  for (std::size_t block = 0; block < flags.events; block += kBlock) {
    const std::size_t block_end = std::min(flags.events, block + kBlock);
    std::vector<std::vector<std::string>> parts(threads);
    std::vector<std::thread> pool;
    const std::size_t per = (block_end - block + threads - 1) / threads;
    for (std::size_t t = 0; t < threads; ++t) {
      const std::size_t b = std::min(block_end, block + t * per);
      const std::size_t e = std::min(block_end, b + per);
      pool.emplace_back(
          [&, b, e, t] { generate_chunk(b, e, flags.events, keys, first, parts[t]); });
    }
    for (std::thread& th : pool) th.join();
    for (const auto& part : parts) {
      for (const std::string& json : part) out << json << '\n';
    }
    std::printf("  %zu/%zu signed (%.0f s)\n", block_end, flags.events,
                bench::seconds_since(start));
    std::fflush(stdout);
  }
  out.close();
  if (!out) bench::die("cannot write " + tmp);
  fs::rename(tmp, flags.cache);
}

// What the queries ask for, sampled from the stored events.
struct Targets {
  std::vector<std::string> ids, authors, e_values, p_values;
  std::int64_t first_created = 0, last_created = 0;
};

// Reads the cache; loads it into the database when `load`; samples query targets either way.
Targets read_cache(const Flags& flags, relaycore::Storage* load) {
  std::ifstream in(flags.cache, std::ios::binary);
  if (!in) bench::die("cannot read " + flags.cache);
  Targets t;
  bench::Generator gen(0x7a56e7);
  std::vector<EventPtr> batch;
  std::vector<relaycore::WriteResult> results;
  std::string line;
  std::size_t n = 0;
  const auto start = bench::Clock::now();
  auto flush = [&] {
    if (batch.empty() || load == nullptr) return;
    if (relaycore::Status s = load->write_batch(batch, results); !s) {
      bench::die("write_batch: " + s.message());
    }
    batch.clear();
  };
  while (std::getline(in, line)) {
    relaycore::Result<EventPtr> ev = relaycore::parse_event(line);
    if (!ev) bench::die("cached event unreadable: " + ev.error().message());
    const relaycore::Event& e = *ev.value();
    if (n == 0) t.first_created = e.created_at();
    t.last_created = e.created_at();
    if (gen.below(500) == 0) {
      t.ids.emplace_back(e.id_hex());
      t.authors.push_back(relaycore::to_hex(e.pubkey()));
      for (const relaycore::Tag& tag : e.tags()) {
        if (tag.size() >= 2 && tag[0] == "e") t.e_values.push_back(tag[1]);
        if (tag.size() >= 2 && tag[0] == "p") t.p_values.push_back(tag[1]);
      }
    }
    if (load != nullptr) {
      batch.push_back(std::move(ev).value());
      if (batch.size() == 10000) flush();
    }
    if (++n % 100000 == 0 && load != nullptr) {
      std::printf("  %zu loaded (%.0f s)\n", n, bench::seconds_since(start));
      std::fflush(stdout);
    }
  }
  flush();
  if (n != flags.events) {
    bench::die("the cache holds " + std::to_string(n) + " events, not " +
               std::to_string(flags.events) + "; delete it or pass --events " + std::to_string(n));
  }
  return t;
}

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
    } else {
      bench::die("unknown flag " + arg +
                 " (flags: --events N --cache FILE --db FILE --queries Q --reload)");
    }
  }
  if (!fs::exists(flags.cache)) generate_cache(flags);

  // The store is loaded once and reused while it holds exactly the cached events.
  bool load = flags.reload || !fs::exists(flags.db);
  if (!load) {
    relaycore::SqliteOptions o;
    o.path = flags.db;
    auto store = relaycore::new_sqlite_storage(o);
    if (store) {
      auto max = store.value()->max_seq();
      load = !max || *max != flags.events;
    } else {
      // Typically a store from an older schema: load a new one.
      std::printf("cannot reuse %s (%s)\n", flags.db.c_str(), store.error().message().c_str());
      load = true;
    }
  }
  Targets targets;
  if (load) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(flags.db + suffix);
    std::printf("loading %s into %s...\n", flags.cache.c_str(), flags.db.c_str());
    std::fflush(stdout);
    relaycore::SqliteOptions o;
    o.path = flags.db;
    o.synchronous = relaycore::SqliteSync::kNormal;  // a bulk load; the queries are what is timed
    auto store = relaycore::new_sqlite_storage(o);
    if (!store) bench::die("open " + flags.db + ": " + store.error().message());
    targets = read_cache(flags, store.value().get());
  } else {
    targets = read_cache(flags, nullptr);
  }

  relaycore::Options options;
  options.sqlite.path = flags.db;
  options.verify_threads = 1;
  options.purge_interval_seconds = 0;
  auto relay = relaycore::Relay::open(std::move(options));
  if (!relay) bench::die("Relay::open: " + relay.error().message());
  auto conn = std::make_shared<EoseConnection>();
  std::shared_ptr<relaycore::Session> session =
      relay.value()->open_session(conn, relaycore::ClientInfo{"127.0.0.1:1", {}});

  auto pick = [](const std::vector<std::string>& v, std::size_t i) {
    return v[(i * 7919) % v.size()];
  };
  const std::int64_t span = targets.last_created - targets.first_created;
  const std::vector<Shape> shapes = {
      {"by id", "id",
       [&](std::size_t i) { return R"({"ids":[")" + pick(targets.ids, i) + "\"]}"; }},
      {"author, limit 100", "author",
       [&](std::size_t i) {
         return R"({"authors":[")" + pick(targets.authors, i) + R"("],"limit":100})";
       }},
      {"author+kind 1, limit 100", "author_kind",
       [&](std::size_t i) {
         return R"({"authors":[")" + pick(targets.authors, i) + R"("],"kinds":[1],"limit":100})";
       }},
      {"kind 7, limit 100", "kind",
       [&](std::size_t i) {
         // A page of reactions ending at a random point in time (paging back through history).
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
  };

  // Warm-up: the first queries fault the database pages into the OS cache.
  for (std::size_t i = 0; i < 200; ++i) {
    for (const Shape& s : shapes) {
      conn->request(*session, R"(["REQ","w",)" + s.filter(i + 100000) + "]");
      session->on_message(R"(["CLOSE","w"])");
    }
  }
  // Shapes are interleaved query by query, so machine noise falls on all of them alike.
  std::vector<std::vector<double>> ms(shapes.size());
  std::vector<std::size_t> returned(shapes.size());
  for (std::size_t i = 0; i < flags.queries; ++i) {
    for (std::size_t k = 0; k < shapes.size(); ++k) {
      auto [t, n] = conn->request(*session, R"(["REQ","q",)" + shapes[k].filter(i) + "]");
      session->on_message(R"(["CLOSE","q"])");
      ms[k].push_back(t);
      returned[k] += n;
    }
  }
  session->on_close();
  bench::shutdown_or_die(*relay.value());

  std::printf("\nREQ -> EOSE on %zu events (%zu queries per shape, one at a time):\n", flags.events,
              flags.queries);
  std::printf("  %-28s %10s %10s %10s %12s\n", "filter", "p50 ms", "p99 ms", "max ms",
              "events/REQ");
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    const double p50 = bench::quantile(ms[k], 0.5);
    const double p99 = bench::quantile(ms[k], 0.99);
    std::printf("  %-28s %10.3f %10.3f %10.3f %12.1f\n", shapes[k].name.c_str(), p50, p99,
                ms[k].back(),
                static_cast<double>(returned[k]) / static_cast<double>(flags.queries));
    bench::print_result("req_" + shapes[k].key + "_p50_ms", p50);
    bench::print_result("req_" + shapes[k].key + "_p99_ms", p99);
  }
  return 0;
}
