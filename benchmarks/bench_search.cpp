// relaycore-bench-search: NIP-50 search on a 1,000,000-event SQLite store, and what the search
// index costs the writer.
//
// The store (--db) is built once by direct storage writes: kind 1 notes of 8 to 40 words drawn
// from a 50,000-word vocabulary with Zipf frequencies (word 1 is about 9% of all words, as "the"
// is in English), with random ids and signatures (storage never checks them). Then:
//   - search latency: --queries one-word and two-word searches with limit 100, straight to
//     Storage::query, the words drawn with the same Zipf frequencies (so common words are
//     searched most, as people do), and separately words by frequency band; on the index as the
//     writes left it, then again after merging it as an idle relay does, when there is any, then
//     with a full backlog (one event short of a batch stored and not yet in the index, whose
//     content every search reads), which is removed again afterwards;
//   - ingest: --ingest events written in batches of 256 (a group commit's size) into a new
//     store with the index and one without (SqliteOptions::search_index = false: the same
//     schema and code, the index left alone), synchronous=FULL as a relay runs, alternated in
//     --rounds rounds (3) so load on the machine hits both alike;
//   - the index's size, from dbstat, against the rest of the file.
//
//   relaycore-bench-search [--events N] [--db FILE] [--queries Q] [--ingest M] [--rounds R]
//                          [--reload] [--ingest-only]
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench_corpus.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/storage.hpp"
#include "storage/sqlite_search.hpp"

namespace {

namespace fs = std::filesystem;
using relaycore::EventPtr;

struct Flags {
  std::size_t events = 1000000;
  std::string db = "relaycore-bench-search.db";
  std::size_t queries = 1000;
  std::size_t ingest = 100000;
  int rounds = 3;
  bool reload = false;
  bool ingest_only = false;  // skips the store, the searches and the size
};

constexpr std::size_t kVocabulary = 50000;
constexpr std::int64_t kFirstCreated = 1700000000;

// Pronounceable distinct words: word i spelled in base 20 consonant-vowel syllables.
std::string word(std::size_t i) {
  static constexpr char kConsonants[] = "bcdfghjklmnprstvwxzq";
  static constexpr char kVowels[] = "aeiou";
  std::string out;
  std::size_t n = i + 1;
  while (n > 0) {
    out.push_back(kConsonants[n % 20]);
    out.push_back(kVowels[(n / 20) % 5]);
    n /= 100;
  }
  return out;
}

// Draws word ranks with Zipf frequencies (s = 1) by inverting the cumulative distribution.
class Zipf {
 public:
  explicit Zipf(std::size_t n) : cdf_(n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / static_cast<double>(i + 1));
    for (double& c : cdf_) c /= sum;
  }
  std::size_t draw(bench::Generator& gen) const {
    const double u = static_cast<double>(gen.below(1u << 30)) / static_cast<double>(1u << 30);
    return static_cast<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

// Event i of the corpus, as JSON with a random id and signature.
std::string event_json(std::size_t i, bench::Generator& gen, const Zipf& zipf) {
  std::string content;
  for (std::size_t w = 8 + gen.below(33); w > 0; --w) {
    if (!content.empty()) content.push_back(' ');
    content += word(zipf.draw(gen));
  }
  const std::string pubkey = relaycore::to_hex(gen.bytes32());
  return R"({"id":")" + relaycore::to_hex(gen.bytes32()) + R"(","pubkey":")" +
         pubkey.substr(0, 60) + std::to_string(1000 + gen.below(5000)) + R"(","created_at":)" +
         std::to_string(kFirstCreated + static_cast<std::int64_t>(i)) +
         R"(,"kind":1,"tags":[],"content":")" + content + R"(","sig":")" +
         relaycore::to_hex(gen.bytes32()) + relaycore::to_hex(gen.bytes32()) + "\"}";
}

std::vector<EventPtr> make_events(std::size_t begin, std::size_t end, std::uint64_t seed,
                                  const Zipf& zipf) {
  bench::Generator gen(seed + begin);
  std::vector<EventPtr> out;
  out.reserve(end - begin);
  for (std::size_t i = begin; i < end; ++i) {
    auto ev = relaycore::parse_event(event_json(i, gen, zipf));
    if (!ev) bench::die("generated event unreadable: " + ev.error().message());
    out.push_back(std::move(ev).value());
  }
  return out;
}

std::shared_ptr<relaycore::Storage> open(const std::string& path, relaycore::SqliteSync sync,
                                         bool search_index = true) {
  relaycore::SqliteOptions o;
  o.path = path;
  o.synchronous = sync;
  o.search_index = search_index;
  auto store = relaycore::new_sqlite_storage(o);
  if (!store) bench::die("open " + path + ": " + store.error().message());
  return std::move(store).value();
}

void remove_db(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}

void write(relaycore::Storage& store, const std::vector<EventPtr>& events) {
  std::vector<relaycore::WriteResult> results;
  if (relaycore::Status s = store.write_batch(events, results); !s) {
    bench::die("write_batch: " + s.message());
  }
}

void build_store(const Flags& f, const Zipf& zipf) {
  std::printf("building %s with %zu events (once)...\n", f.db.c_str(), f.events);
  std::fflush(stdout);
  remove_db(f.db);
  auto store = open(f.db, relaycore::SqliteSync::kNormal);
  const auto start = bench::Clock::now();
  constexpr std::size_t kBatch = 10000;
  for (std::size_t b = 0; b < f.events; b += kBatch) {
    write(*store, make_events(b, std::min(f.events, b + kBatch), 0x5ea4c4, zipf));
    if ((b + kBatch) % 100000 == 0) {
      std::printf("  %zu stored (%.0f s)\n", b + kBatch, bench::seconds_since(start));
      std::fflush(stdout);
    }
  }
}

// Runs one SQL statement on a file, outside the storage, and returns its first column.
double sql_number(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) bench::die("cannot open " + path);
  sqlite3_stmt* stmt = nullptr;
  double value = 0;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    bench::die(std::string("sql: ") + sqlite3_errmsg(db));
  }
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) value = sqlite3_column_double(stmt, 0);
  if (rc != SQLITE_DONE) bench::die(std::string("sql: ") + sqlite3_errmsg(db));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

struct Latency {
  double p50 = 0, p99 = 0, max = 0, mean_results = 0;
};

Latency time_queries(relaycore::Storage& store, const std::vector<std::string>& queries) {
  std::vector<double> ms;
  std::size_t results = 0;
  for (const std::string& q : queries) {
    relaycore::Filter f;
    f.search = q;
    f.limit = 100;
    const auto start = bench::Clock::now();
    relaycore::Status s = store.query(f, relaycore::QueryRequest(), [&](const auto&) {
      ++results;
      return true;
    });
    ms.push_back(bench::seconds_since(start) * 1000);
    if (!s) bench::die("query: " + s.message());
  }
  Latency l;
  l.mean_results = static_cast<double>(results) / static_cast<double>(queries.size());
  l.p50 = bench::quantile(ms, 0.5);
  l.p99 = bench::quantile(ms, 0.99);
  l.max = ms.back();
  return l;
}

void report(const std::string& name, const std::string& key, const Latency& l) {
  std::printf("  %-44s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%.0f results)\n", name.c_str(),
              l.p50, l.p99, l.max, l.mean_results);
  bench::print_result("search_" + key + "_p99_ms", l.p99);
}

// The CPU time this thread has used, in microseconds.
double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

// One ingest run: events per second, and the writing thread's CPU time per event, which other
// people's load on the machine moves less than the rate.
struct Ingest {
  double rate = 0;
  double cpu_us = 0;
};

// Writes `events` in batches of 256 into a new store at `path`, with or without the index. As
// the relay's writer does under steady load, with no idle time, one step of the storage's upkeep
// (Storage::maintain: merging the index) runs a second.
Ingest ingest_rate(const std::string& path, bool index, const std::vector<EventPtr>& events) {
  remove_db(path);
  auto store = open(path, relaycore::SqliteSync::kFull, index);
  const auto start = bench::Clock::now();
  const double cpu_start = thread_cpu_us();
  auto next_upkeep = start + std::chrono::seconds(1);
  for (std::size_t b = 0; b < events.size(); b += 256) {
    std::vector<EventPtr> batch(
        events.begin() + static_cast<std::ptrdiff_t>(b),
        events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), b + 256)));
    write(*store, batch);
    if (bench::Clock::now() >= next_upkeep) {
      if (auto more = store->maintain(); !more.is_ok()) {
        bench::die("maintain: " + more.error().message());
      }
      next_upkeep = bench::Clock::now() + std::chrono::seconds(1);
    }
  }
  const auto n = static_cast<double>(events.size());
  return {n / bench::seconds_since(start), (thread_cpu_us() - cpu_start) / n};
}

// Builds the store when needed, times the searches and reports the index size.
void search_and_size(const Flags& f, const Zipf& zipf) {
  bool build = f.reload || !fs::exists(f.db);
  if (!build) {
    // Counted rather than read from max_seq(): the backlog's events below are stored and erased
    // again, which leaves the sequence higher.
    auto n = open(f.db, relaycore::SqliteSync::kNormal)
                 ->count({relaycore::Filter{}}, relaycore::QueryRequest());
    build = !n || *n != f.events;
  }
  if (build) build_store(f, zipf);

  // Search latency.
  auto store = open(f.db, relaycore::SqliteSync::kNormal);
  bench::Generator gen(0x9e4c);
  std::vector<std::string> zipf_one, zipf_two, common, middle, rare;
  for (std::size_t i = 0; i < f.queries; ++i) {
    zipf_one.push_back(word(zipf.draw(gen)));
    zipf_two.push_back(word(zipf.draw(gen)) + " " + word(zipf.draw(gen)));
    common.push_back(word(gen.below(10)));
    middle.push_back(word(100 + gen.below(900)));
    rare.push_back(word(10000 + gen.below(40000)));
  }
  time_queries(*store, zipf_one);  // warms the page cache
  // As the store's writes left the index, then once idle time has merged it (Storage::maintain,
  // as the relay's writer runs it when nothing is queued).
  for (const char* state : {"", "_merged"}) {
    if (*state != '\0') {
      const auto start = bench::Clock::now();
      int steps = 0;
      for (;;) {
        auto more = store->maintain();
        if (!more.is_ok()) bench::die("maintain: " + more.error().message());
        if (!*more) break;
        ++steps;
      }
      if (steps == 0) break;
      std::printf("idle-time merging: %d steps, %.1f s\n", steps, bench::seconds_since(start));
    }
    std::printf("search%s, limit 100, %zu events, %zu queries each:\n",
                *state != '\0' ? " after merging" : "", f.events, f.queries);
    const std::string k = state;
    report("one word, drawn by frequency", "one_word" + k, time_queries(*store, zipf_one));
    report("two words, drawn by frequency", "two_words" + k, time_queries(*store, zipf_two));
    report("one word of the 10 most frequent", "common" + k, time_queries(*store, common));
    report("one word ranked 100-1000", "middle" + k, time_queries(*store, middle));
    report("one word ranked 10000-50000", "rare" + k, time_queries(*store, rare));
  }
  {
    // The writer adds words to the index a batch at a time; until then searches read the
    // content of the events stored since the last batch. Those events are erased again, which
    // leaves the index as it was, so that the store stays the same from run to run.
    const std::vector<EventPtr> backlog =
        make_events(f.events, f.events + relaycore::storage::kSearchBacklog - 1, 0xbac1, zipf);
    write(*store, backlog);
    std::printf("search with %zu events not yet in the index:\n", backlog.size());
    report("one word, drawn by frequency", "one_word_backlog", time_queries(*store, zipf_one));
    report("two words, drawn by frequency", "two_words_backlog", time_queries(*store, zipf_two));
    report("one word ranked 10000-50000", "rare_backlog", time_queries(*store, rare));
    std::vector<relaycore::EventId> ids;
    for (const EventPtr& e : backlog) ids.push_back(e->id());
    if (auto erased = store->erase(ids); !erased) {
      bench::die("erase: " + erased.error().message());
    }
  }
  store.reset();

  // Index size.
  const double total = sql_number(f.db, "SELECT sum(pgsize) FROM dbstat");
  const double index =
      sql_number(f.db, "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'events_search%'");
  std::printf("index size: %.0f MiB of %.0f MiB (+%.0f%% over the file without it)\n",
              index / 1048576, total / 1048576, 100 * index / (total - index));
  bench::print_result("search_index_overhead_pct", 100 * index / (total - index));
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--events") {
      f.events = std::stoul(bench::flag_value(argc, argv, i));
    } else if (a == "--db") {
      f.db = bench::flag_value(argc, argv, i);
    } else if (a == "--queries") {
      f.queries = std::stoul(bench::flag_value(argc, argv, i));
    } else if (a == "--ingest") {
      f.ingest = std::stoul(bench::flag_value(argc, argv, i));
    } else if (a == "--rounds") {
      f.rounds = std::stoi(bench::flag_value(argc, argv, i));
    } else if (a == "--reload") {
      f.reload = true;
    } else if (a == "--ingest-only") {
      f.ingest_only = true;
    } else {
      bench::die("unknown flag " + a);
    }
  }
  const Zipf zipf(kVocabulary);
  if (!f.ingest_only) search_and_size(f, zipf);

  // Ingest with and without the index, in alternating rounds.
  const std::vector<EventPtr> events = make_events(0, f.ingest, 0x1a6e57, zipf);
  const std::string with_path = f.db + ".ingest-index", without_path = f.db + ".ingest-plain";
  std::vector<double> with, without;
  std::vector<double> ratios, cpu_with, cpu_without;
  for (int round = 0; round < f.rounds; ++round) {
    const Ingest a = ingest_rate(with_path, true, events);
    const Ingest b = ingest_rate(without_path, false, events);
    with.push_back(a.rate);
    without.push_back(b.rate);
    cpu_with.push_back(a.cpu_us);
    cpu_without.push_back(b.cpu_us);
    ratios.push_back(100 * a.rate / b.rate);
    std::printf(
        "  round %d: with the index %.0f events/s (%.1f us CPU each), without %.0f (%.1f us): "
        "%.0f%%\n",
        round + 1, a.rate, a.cpu_us, b.rate, b.cpu_us, ratios.back());
  }
  remove_db(with_path);
  remove_db(without_path);
  const double w = bench::quantile(with, 0.5), wo = bench::quantile(without, 0.5);
  std::printf("ingest, batches of 256, synchronous=FULL, %zu events, median of %d rounds:\n",
              f.ingest, f.rounds);
  std::printf("  with the index %.0f events/s, without %.0f events/s: %.0f%%\n", w, wo,
              100 * w / wo);
  const double ratio_median = bench::quantile(ratios, 0.5);  // sorts `ratios`
  std::printf("  ratio per round: median %.0f%%, from %.0f%% to %.0f%%\n", ratio_median,
              ratios.front(), ratios.back());
  std::printf("  writer CPU per event, medians: with the index %.1f us, without %.1f us\n",
              bench::quantile(cpu_with, 0.5), bench::quantile(cpu_without, 0.5));
  bench::print_result("search_ingest_ratio_pct", 100 * w / wo);
  return 0;
}
