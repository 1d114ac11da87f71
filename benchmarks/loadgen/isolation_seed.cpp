// seed: builds the relay's SQLite file in process, through the library's own storage, so that a
// 100,000-event store takes seconds instead of a long publish. Events are signed in chunks on
// all cores (bench::build_corpus) and written a chunk per transaction; all are dated at least a
// day ago, so a probe can tell them from the events it publishes itself.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <future>
#include <thread>

#include "bench_corpus.hpp"
#include "isolation.hpp"
#include "relaycore/sqlite.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::isolation {
namespace {

constexpr const char* kUsage =
    "usage: relaycore-bench-isolation seed --db PATH [flags]\n"
    "  --db PATH            SQLite file to create (must not exist)\n"
    "  --events N           events to store (default 5000)\n"
    "  --content-size B     content bytes per event, about (default 200)\n"
    "  --topics T           event i carries [\"t\",\"topic<i % T>\"] (default 1)\n"
    "  --ids-out FILE       also write every stored id, one hex id per line\n";

// Events per signing task and per transaction.
constexpr std::size_t kChunk = 5000;
// created_at step between consecutive events, as build_corpus spaces them.
constexpr std::int64_t kStepSeconds = 7;

}  // namespace

int run_seed(int argc, char** argv) {
  std::string db, ids_out;
  std::size_t events = 5000, content_size = 200, topics = 1;
  FlagReader(argc, argv, kUsage).read([&](const std::string& flag, const std::string& v) {
    if (flag == "--db") {
      db = v;
    } else if (flag == "--events") {
      events = to_count(flag, v);
    } else if (flag == "--content-size") {
      content_size = to_count(flag, v);
    } else if (flag == "--ids-out") {
      ids_out = v;
    } else if (flag == "--topics") {
      topics = std::max<std::size_t>(1, to_count(flag, v));
    } else {
      return false;
    }
    return true;
  });
  if (db.empty()) FlagReader(argc, argv, kUsage).print_usage_and_exit(2);

  const Clock::time_point start = Clock::now();
  SqliteOptions options;
  options.path = db;
  options.synchronous = SqliteSync::kNormal;
  Result<std::shared_ptr<Storage>> storage = new_sqlite_storage(options);
  if (!storage) bench::die("cannot open " + db + ": " + storage.error().message());

  // The newest event is a day old.
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const std::int64_t first = now - 86400 - static_cast<std::int64_t>(events) * kStepSeconds;
  const std::size_t chunks = (events + kChunk - 1) / kChunk;
  auto build = [&](std::size_t c) {
    // Each chunk spreads its events over the topics from topic0 (and has its own 8 authors).
    bench::CorpusShape shape{"seed", std::min(kChunk, events - c * kChunk), content_size, 0, 2};
    shape.topics = topics;
    return bench::build_corpus(shape, 0x15e0 + c,
                               first + static_cast<std::int64_t>(c * kChunk) * kStepSeconds);
  };
  // One chunk signing per core while the previous one is written.
  const std::size_t workers = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::future<bench::Corpus>> pending;
  std::size_t next = 0, stored = 0;
  std::vector<WriteResult> results;
  std::FILE* ids = ids_out.empty() ? nullptr : std::fopen(ids_out.c_str(), "w");
  if (!ids_out.empty() && ids == nullptr) bench::die("cannot create " + ids_out);
  while (stored < events) {
    while (next < chunks && pending.size() < workers) {
      pending.push_back(std::async(std::launch::async, build, next++));
    }
    bench::Corpus corpus = pending.front().get();
    pending.erase(pending.begin());
    if (Status s = storage.value()->write_batch(corpus.events, results); !s) {
      bench::die("write: " + s.message());
    }
    for (const WriteResult& r : results) {
      if (r.outcome != WriteOutcome::kStored) bench::die("write: " + r.status.message());
    }
    stored += corpus.events.size();
    for (const EventPtr& e : corpus.events) {
      if (ids != nullptr) std::fprintf(ids, "%.*s\n", 64, e->id_hex().data());
    }
  }
  if (ids != nullptr && std::fclose(ids) != 0) bench::die("cannot write " + ids_out);
  std::printf("{\"events\":%zu,\"content_size\":%zu,\"topics\":%zu,\"seconds\":%.1f}\n", stored,
              content_size, topics, ms_since(start) / 1000);
  return 0;
}

}  // namespace relaycore::isolation
