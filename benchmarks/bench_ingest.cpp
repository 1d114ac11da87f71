// relaycore-bench-ingest: the in-process ingest pipeline (issue 5), no sockets. Pre-signed
// events go through Relay::submit_async (the same verify -> persist -> ack path as a client's
// EVENT) into memory storage and into SQLite on disk, and the program prints events/s next to
// the verify-bound limit measured in the same run: verify threads x the single-thread
// Event::verify() rate. The goal is SQLite ingest >= 85% of that limit.
//
//   relaycore-bench-ingest [--events N] [--threads 1,2] [--dir DIR] [--sync full|normal]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>
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
    } else if (arg == "--sync") {
      const std::string v = value();
      if (v != "full" && v != "normal") bench::die("--sync takes full or normal");
      f.sync = v == "full" ? relaycore::SqliteSync::kFull : relaycore::SqliteSync::kNormal;
    } else {
      bench::die("unknown flag " + arg +
                 " (flags: --events N --threads 1,2 --dir DIR --sync full|normal)");
    }
  }
  if (f.threads.empty()) {
    const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
    f.threads = {1};
    if (hw > 1) f.threads.push_back(hw);
  }
  return f;
}

struct IngestRun {
  double events_per_second = 0;
  double mean_batch = 0;
  std::uint64_t batches = 0;
};

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
  const auto start = bench::Clock::now();
  for (const EventPtr& ev : events) {
    relay.value()->submit_async(ev, [&](const relaycore::OkResult& ok) {
      if (!ok.accepted || !ok.message.empty()) bad.fetch_add(1);
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
  run.events_per_second = static_cast<double>(events.size()) / bench::seconds_since(start);
  const relaycore::RelayStats stats = relay.value()->stats();
  run.batches = stats.write_batches;
  if (stats.write_batches > 0) {
    run.mean_batch =
        static_cast<double>(stats.write_batch_events) / static_cast<double>(stats.write_batches);
  }
  relay.value()->shutdown();
  if (bad.load() != 0) bench::die(std::to_string(bad.load()) + " events were not accepted");
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
      rows.push_back({"sqlite", threads, ingest(corpus.events, std::move(o)), par});
    }
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
  std::printf(
      "\nlimit = threads x single-thread verify rate; par.verify = wall-clock rate of that many\n"
      "threads verifying side by side with nothing else of relaycore running.\n");
  bench::print_result("verify_rate_1t", rate);
  for (const Row& r : rows) {
    const std::string key = "ingest_" + r.storage + "_" + std::to_string(r.threads) + "t";
    const double limit = rate * static_cast<double>(r.threads);
    bench::print_result(key + "_eps", r.run.events_per_second);
    bench::print_result(key + "_pct_of_limit", 100 * r.run.events_per_second / limit);
  }
  return 0;
}
