#include "bench_req_store.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <utility>

#include "bench_corpus.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/sqlite.hpp"
#include "relaycore/storage.hpp"

namespace bench {
namespace {

namespace fs = std::filesystem;
using relaycore::EventPtr;

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

// Events [begin, end) of the tied corpus: all at `created_at`, kind 1, one t tag, by 8 authors
// in turn.
void generate_tied_chunk(std::size_t begin, std::size_t end,
                         const std::vector<relaycore::Keypair>& keys, std::int64_t created_at,
                         std::vector<std::string>& out) {
  bench::Generator gen(0x71e50000 + begin);
  for (std::size_t i = begin; i < end; ++i) {
    relaycore::EventDraft d;
    d.created_at = created_at;
    d.kind = 1;
    d.tags = {{"t", "tie"}};
    // The number keeps every event distinct: with one author, kind and created_at per eighth
    // of the corpus, two equal contents would be one event.
    d.content = "#" + std::to_string(i) + " " + gen.content(80 + gen.below(200));
    relaycore::Result<EventPtr> ev = relaycore::sign_event(keys[i % keys.size()], std::move(d));
    if (!ev) bench::die("sign_event: " + ev.error().message());
    out.emplace_back(ev.value()->json());
  }
}

// Signs `events` events made by `chunk` on every core and writes them to `cache` as JSON
// lines, through a temporary file so an interrupted run never leaves a short cache behind.
void generate_cache(const std::string& cache, std::size_t events, const ChunkFn& chunk) {
  std::printf("generating and signing %zu events into %s (once)...\n", events, cache.c_str());
  std::fflush(stdout);
  const auto start = bench::Clock::now();
  const std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  const std::string tmp = cache + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) bench::die("cannot write " + tmp);
  constexpr std::size_t kBlock = 50000;
  for (std::size_t block = 0; block < events; block += kBlock) {
    const std::size_t block_end = std::min(events, block + kBlock);
    std::vector<std::vector<std::string>> parts(threads);
    std::vector<std::thread> pool;
    const std::size_t per = (block_end - block + threads - 1) / threads;
    for (std::size_t t = 0; t < threads; ++t) {
      const std::size_t b = std::min(block_end, block + t * per);
      const std::size_t e = std::min(block_end, b + per);
      pool.emplace_back([&, b, e, t] { chunk(b, e, parts[t]); });
    }
    for (std::thread& th : pool) th.join();
    for (const auto& part : parts) {
      for (const std::string& json : part) out << json << '\n';
    }
    std::printf("  %zu/%zu signed (%.0f s)\n", block_end, events, bench::seconds_since(start));
    std::fflush(stdout);
  }
  out.close();
  if (!out) bench::die("cannot write " + tmp);
  fs::rename(tmp, cache);
}

// Reads the cache of `events` events; loads it into the database when `load`; samples query
// targets either way.
ReqTargets read_cache(const std::string& cache, std::size_t events, relaycore::Storage* load) {
  std::ifstream in(cache, std::ios::binary);
  if (!in) bench::die("cannot read " + cache);
  ReqTargets t;
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
    for (const relaycore::Tag& tag : e.tags()) {
      if (t.t_value.empty() && tag.size() >= 2 && tag[0] == "t") t.t_value = tag[1];
    }
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
  if (n != events) {
    bench::die("the cache " + cache + " holds " + std::to_string(n) + " events, not " +
               std::to_string(events) + "; delete it or pass --events " + std::to_string(n));
  }
  return t;
}

}  // namespace

ChunkFn spread_corpus(std::size_t total) {
  const std::int64_t first = static_cast<std::int64_t>(std::time(nullptr)) - kSpanSeconds - 86400;
  auto keys = std::make_shared<const std::vector<relaycore::Keypair>>(
      bench::Generator(0xa07405).keys(kAuthors));
  return [total, first, keys](std::size_t begin, std::size_t end, std::vector<std::string>& out) {
    generate_chunk(begin, end, total, *keys, first, out);
  };
}

ChunkFn tied_corpus() {
  const std::int64_t created_at = static_cast<std::int64_t>(std::time(nullptr)) - 86400;
  auto keys =
      std::make_shared<const std::vector<relaycore::Keypair>>(bench::Generator(0x71e5).keys(8));
  return [created_at, keys](std::size_t begin, std::size_t end, std::vector<std::string>& out) {
    generate_tied_chunk(begin, end, *keys, created_at, out);
  };
}

ReqTargets prepare_store(const std::string& cache, const std::string& db, std::size_t events,
                         bool reload, const ChunkFn& chunk) {
  if (!fs::exists(cache)) generate_cache(cache, events, chunk);
  // The store is loaded once and reused while it holds exactly the cached events (a store of
  // an older schema is migrated by the open).
  bool load = reload || !fs::exists(db);
  if (!load) {
    relaycore::SqliteOptions o;
    o.path = db;
    auto store = relaycore::new_sqlite_storage(o);
    if (store) {
      auto max = store.value()->max_seq();
      load = !max || *max != events;
    } else {
      std::printf("cannot reuse %s (%s)\n", db.c_str(), store.error().message().c_str());
      load = true;
    }
  }
  if (!load) return read_cache(cache, events, nullptr);
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db + suffix);
  std::printf("loading %s into %s...\n", cache.c_str(), db.c_str());
  std::fflush(stdout);
  const auto start = bench::Clock::now();
  relaycore::SqliteOptions o;
  o.path = db;
  o.synchronous = relaycore::SqliteSync::kNormal;  // a bulk load; the queries are what is timed
  auto store = relaycore::new_sqlite_storage(o);
  if (!store) bench::die("open " + db + ": " + store.error().message());
  ReqTargets targets = read_cache(cache, events, store.value().get());
  std::printf("loaded %s in %.0f s\n", db.c_str(), bench::seconds_since(start));
  return targets;
}

}  // namespace bench
