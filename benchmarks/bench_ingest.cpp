// relaycore-bench-ingest: the in-process ingest pipeline, no sockets. Pre-signed
// events go through Relay::submit_async (the same verify -> persist -> ack path as a client's
// EVENT) into memory storage and into SQLite on disk, and the program prints events/s next to
// the verify-bound limit measured in the same run: verify threads x the single-thread
// Event::verify() rate. The goal is SQLite ingest >= 85% of that limit.
//
//   relaycore-bench-ingest [--events N] [--threads 1,2] [--dir DIR] [--sync full|normal]
//                          [--no-wal-buffer]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_corpus.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"

namespace {

namespace fs = std::filesystem;
using relaycore::EventPtr;

struct Flags {
  std::size_t events = 40000;
  std::vector<std::size_t> threads;  // empty: 1 and the hardware thread count
  std::string dir = ".";
  relaycore::SqliteSync sync = relaycore::SqliteSync::kFull;
  bool wal_buffer = true;
};

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&] { return bench::flag_value(argc, argv, i); };
    if (arg == "--events") {
      f.events = std::stoul(value());
    } else if (arg == "--threads") {
      std::stringstream list(value());
      std::string item;
      while (std::getline(list, item, ',')) f.threads.push_back(std::stoul(item));
    } else if (arg == "--dir") {
      f.dir = value();
    } else if (arg == "--no-wal-buffer") {
      f.wal_buffer = false;
    } else if (arg == "--sync") {
      const std::string v = value();
      if (v != "full" && v != "normal") bench::die("--sync takes full or normal");
      f.sync = v == "full" ? relaycore::SqliteSync::kFull : relaycore::SqliteSync::kNormal;
    } else {
      bench::die("unknown flag " + arg +
                 " (flags: --events N --threads 1,2 --dir DIR --sync full|normal --no-wal-buffer)");
    }
  }
  if (f.threads.empty()) {
    // The relay's default (every core but one, for the writer), and every core.
    const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
    f.threads = {hw > 1 ? hw - 1 : 1};
    if (hw > 1) f.threads.push_back(hw);
  }
  return f;
}

struct IngestRun {
  double events_per_second = 0;
  double mean_batch = 0;
  std::uint64_t batches = 0;
  // CPU microseconds per event, by thread name (rc-verify, rc-write, rc-dispatch, and this
  // program's submitting thread), and in all.
  std::map<std::string, double> cpu_us;
  double cpu_us_total = 0;
  double wall_seconds = 0;
};

// CPU seconds used so far by each of this process's threads, summed by thread name.
std::map<std::string, double> cpu_by_thread_name() {
  std::map<std::string, double> out;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm_file(task.path() / "comm");
    std::string comm;
    std::getline(comm_file, comm);
    out[comm] += bench::stat_cpu_seconds(task.path() / "stat");
  }
  return out;
}

double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// Submits every event without waiting (the ingest queue applies back-pressure), then waits for
// the last OK. Every OK must be "true" with no message: a duplicate or a rejection would mean
// the run measured something other than fresh ingest.
IngestRun ingest(const std::vector<EventPtr>& events, relaycore::Options options) {
  auto relay = relaycore::Relay::open(std::move(options));
  if (!relay) bench::die("Relay::open: " + relay.error().message());
  std::mutex mu;
  std::condition_variable all_done;
  std::atomic<std::size_t> acked{0};
  std::atomic<std::size_t> bad{0};
  std::string first_bad;  // guarded by mu
  const std::map<std::string, double> cpu_before = cpu_by_thread_name();
  const double process_before = process_cpu_seconds();
  const auto start = bench::Clock::now();
  for (const EventPtr& ev : events) {
    relay.value()->submit_async(ev, [&](const relaycore::OkResult& ok) {
      if (!ok.accepted || !ok.message.empty()) {
        if (bad.fetch_add(1) == 0) {
          std::lock_guard lock(mu);
          first_bad = ok.message;
        }
      }
      if (acked.fetch_add(1) + 1 == events.size()) {
        std::lock_guard lock(mu);
        all_done.notify_all();
      }
    });
  }
  {
    std::unique_lock lock(mu);
    all_done.wait(lock, [&] { return acked.load() == events.size(); });
  }
  IngestRun run;
  run.wall_seconds = bench::seconds_since(start);
  run.events_per_second = static_cast<double>(events.size()) / run.wall_seconds;
  const double per_event = 1e6 / static_cast<double>(events.size());
  run.cpu_us_total = (process_cpu_seconds() - process_before) * per_event;
  for (const auto& [name, secs] : cpu_by_thread_name()) {
    auto it = cpu_before.find(name);
    const double used = secs - (it == cpu_before.end() ? 0.0 : it->second);
    if (used > 0) run.cpu_us[name.rfind("rc-", 0) == 0 ? name : "submit+other"] += used * per_event;
  }
  const relaycore::RelayStats stats = relay.value()->stats();
  run.batches = stats.write_batches;
  if (stats.write_batches > 0) {
    run.mean_batch =
        static_cast<double>(stats.write_batch_events) / static_cast<double>(stats.write_batches);
  }
  bench::shutdown_or_die(*relay.value());
  if (bad.load() != 0) {
    std::lock_guard lock(mu);
    bench::die(std::to_string(bad.load()) + " events were not accepted, the first with \"" +
               first_bad + "\"");
  }
  return run;
}

// Wall-clock events/s of `threads` threads running Event::verify() side by side for `seconds`:
// what the machine gives that many verifiers right now (other load on a shared machine shows
// up here and not in the single-thread CPU-time rate).
double parallel_verify_rate(const std::vector<EventPtr>& events, std::size_t threads,
                            double seconds) {
  std::atomic<std::size_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  const auto start = bench::Clock::now();
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::size_t i = t * 997;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!events[i++ % events.size()]->verify()) bench::die("verify failed");
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (std::thread& th : pool) th.join();
  return static_cast<double>(done.load()) / bench::seconds_since(start);
}

// The storage's own cost, without the pipeline: write_batch of the corpus in group commits of
// `batch` events on a fresh SQLite file (microseconds per event), then contains() for ids that
// are not stored, the lookup every new event gets before its signature check (microseconds
// per call).
struct StorageCost {
  double write_us = 0;
  double contains_us = 0;
};

StorageCost storage_cost(const std::vector<EventPtr>& events, const fs::path& file,
                         relaycore::SqliteSync sync, bool wal_buffer, std::size_t batch) {
  relaycore::SqliteOptions o;
  o.path = file.string();
  o.synchronous = sync;
  o.buffer_wal_writes = wal_buffer;
  auto store = relaycore::new_sqlite_storage(o);
  if (!store) bench::die("new_sqlite_storage: " + store.error().message());
  std::vector<relaycore::WriteResult> results;
  StorageCost cost;
  auto start = bench::Clock::now();
  for (std::size_t i = 0; i < events.size(); i += batch) {
    const std::size_t n = std::min(batch, events.size() - i);
    if (relaycore::Status s = store.value()->write_batch({events.data() + i, n}, results); !s) {
      bench::die("write_batch: " + s.message());
    }
  }
  cost.write_us = bench::seconds_since(start) * 1e6 / static_cast<double>(events.size());
  bench::Generator gen(0xc0a7);
  constexpr std::size_t kLookups = 20000;
  start = bench::Clock::now();
  for (std::size_t i = 0; i < kLookups; ++i) {
    relaycore::Result<bool> found = store.value()->contains(gen.bytes32());
    if (!found.is_ok() || *found) bench::die("contains() of a random id");
  }
  cost.contains_us = bench::seconds_since(start) * 1e6 / kLookups;
  return cost;
}

relaycore::Options base_options(std::size_t threads) {
  relaycore::Options o;
  o.verify_threads = threads;
  o.purge_interval_seconds = 0;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = parse_flags(argc, argv);
  std::printf("signing %zu events...\n", flags.events);
  std::fflush(stdout);
  // created_at one day back, so nothing is refused as future-dated whatever the clock says.
  const std::int64_t base = static_cast<std::int64_t>(std::time(nullptr)) - 86400 -
                            static_cast<std::int64_t>(flags.events) * 7;
  const bench::Corpus corpus =
      bench::build_corpus({"typical", flags.events, 200, 2, 4}, 0x1e57, base);
  std::printf("corpus: %zu kind-1 events, 2-4 tags, ~200 B content, %zu B JSON avg, 8 keys\n",
              corpus.events.size(), bench::mean_json_bytes(corpus));

  const fs::path dir =
      fs::absolute(flags.dir) / ("relaycore-bench-ingest-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  // The limit is measured before and after the ingest runs and averaged, so a change in the
  // machine's load during the run moves both sides.
  const double rate_before = bench::verify_rate_per_thread(corpus.events, 2.0);
  std::printf("single-thread Event::verify(): %.0f events/s (CPU time)\n", rate_before);

  struct Row {
    std::string storage;
    std::size_t threads;
    IngestRun run;
    double parallel_verify;
  };
  std::vector<Row> rows;
  int n = 0;
  for (std::size_t threads : flags.threads) {
    const double par = parallel_verify_rate(corpus.events, threads, 1.5);
    {
      relaycore::Options o = base_options(threads);
      o.storage = relaycore::new_memory_storage();
      rows.push_back({"memory", threads, ingest(corpus.events, std::move(o)), par});
    }
    {
      relaycore::Options o = base_options(threads);
      o.sqlite.path = (dir / ("ingest-" + std::to_string(n++) + ".db")).string();
      o.sqlite.synchronous = flags.sync;
      o.sqlite.buffer_wal_writes = flags.wal_buffer;
      rows.push_back({"sqlite", threads, ingest(corpus.events, std::move(o)), par});
    }
    {
      // The same without the NIP-50 search index, for what the index costs ingest end to end.
      relaycore::Options o = base_options(threads);
      o.sqlite.path = (dir / ("ingest-" + std::to_string(n++) + ".db")).string();
      o.sqlite.synchronous = flags.sync;
      o.sqlite.buffer_wal_writes = flags.wal_buffer;
      o.sqlite.search_index = false;
      rows.push_back({"no-fts", threads, ingest(corpus.events, std::move(o)), par});
    }
  }
  // Then without WAL write buffering, one after the other, so the two are compared in the same
  // run; only where buffering is in effect (synchronous=FULL, not turned off).
  const StorageCost storage =
      storage_cost(corpus.events, dir / "storage-only.db", flags.sync, flags.wal_buffer, 1024);
  const bool compare_buffering = flags.wal_buffer && flags.sync == relaycore::SqliteSync::kFull;
  std::optional<StorageCost> unbuffered;
  if (compare_buffering) {
    unbuffered =
        storage_cost(corpus.events, dir / "storage-only-unbuffered.db", flags.sync, false, 1024);
  }
  const double rate_after = bench::verify_rate_per_thread(corpus.events, 2.0);
  const double rate = (rate_before + rate_after) / 2;
  std::printf("single-thread Event::verify() after: %.0f events/s; limit uses the mean %.0f\n",
              rate_after, rate);
  fs::remove_all(dir);

  std::printf("\n%-8s %8s %12s %14s %10s %12s %12s\n", "storage", "threads", "events/s", "limit",
              "of limit", "mean batch", "par.verify");
  for (const Row& r : rows) {
    const double limit = rate * static_cast<double>(r.threads);
    std::printf("%-8s %8zu %12.0f %14.0f %9.1f%% %12.1f %12.0f\n", r.storage.c_str(), r.threads,
                r.run.events_per_second, limit, 100 * r.run.events_per_second / limit,
                r.run.mean_batch, r.parallel_verify);
  }
  std::printf("\nCPU per event (us), by thread; cores = process CPU time / wall time:\n");
  std::printf("%-8s %8s %10s %10s %12s %14s %8s %8s\n", "storage", "threads", "rc-verify",
              "rc-write", "rc-dispatch", "submit+other", "total", "cores");
  for (const Row& r : rows) {
    auto cpu = [&](const char* name) {
      auto it = r.run.cpu_us.find(name);
      return it == r.run.cpu_us.end() ? 0.0 : it->second;
    };
    std::printf("%-8s %8zu %10.1f %10.1f %12.1f %14.1f %8.1f %8.2f\n", r.storage.c_str(), r.threads,
                cpu("rc-verify"), cpu("rc-write"), cpu("rc-dispatch"), cpu("submit+other"),
                r.run.cpu_us_total, r.run.cpu_us_total * r.run.events_per_second * 1e-6);
  }
  std::printf("one Event::verify() on one thread: %.1f us\n", 1e6 / rate);
  std::printf(
      "SQLite alone (wall time, one thread): write_batch %.1f us/event in batches of 1024,"
      " contains() of a new id %.1f us\n",
      storage.write_us, storage.contains_us);
  if (unbuffered) {
    std::printf("  the same write_batch without WAL write buffering: %.1f us/event (%.2fx)\n",
                unbuffered->write_us, unbuffered->write_us / storage.write_us);
  }
  std::printf(
      "\nlimit = threads x single-thread verify rate; par.verify = wall-clock rate of that many\n"
      "threads verifying side by side with nothing else of relaycore running.\n");
  bench::print_result("verify_rate_1t", rate);
  bench::print_result("sqlite_write_us_per_event", storage.write_us);
  bench::print_result("sqlite_contains_us", storage.contains_us);
  if (unbuffered) {
    bench::print_result("sqlite_write_unbuffered_us_per_event", unbuffered->write_us);
  }
  for (const Row& r : rows) {
    const std::string key = "ingest_" + r.storage + "_" + std::to_string(r.threads) + "t";
    const double limit = rate * static_cast<double>(r.threads);
    bench::print_result(key + "_eps", r.run.events_per_second);
    bench::print_result(key + "_pct_of_limit", 100 * r.run.events_per_second / limit);
  }
  return 0;
}
