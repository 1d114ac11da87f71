// relaycore-bench-wal: the pages a group commit writes to SQLite's WAL, per event and by B-tree
// (table or index). Every page a commit dirties is written to the WAL, synced, and later copied
// into the database file by the checkpoint, so pages per event is what the storage's layout costs
// the writer at a given commit size, and unlike CPU time it does not depend on the machine's
// noise. Events are written through SqliteStorage::write_batch, as the relay's writer does, with
// checkpoints held off so that the WAL keeps every frame; the frames' page numbers are then
// matched to B-trees through SQLite's dbstat table.
//
//   relaycore-bench-wal [--events N] [--batch B] [--per-second R] [--authors A] [--ep-tags K]
//                       [--cpu-pause-us P]
//
// With --cpu-pause-us it measures instead the writing thread's CPU time (user and system, from
// CLOCK_THREAD_CPUTIME_ID) inside each commit, with the storage's own checkpointing and a pause
// of P microseconds between commits, as when events arrive at a moderate rate: what a commit
// costs on its own and what each event adds, without the relay around it. This one is a
// machine figure: compare it only with runs on the same machine.
//
// The events are kind 1 with about 100 bytes of content and a ["t","bench"] tag, like
// relaycore-loadgen's, R to a second of created_at (4,000 by default, the open-loop load of
// benchmarks/run_socket.sh), signed by A authors (8), with K random e/p tags each (0).
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench_corpus.hpp"
#include "relaycore/sqlite.hpp"

namespace {

struct Config {
  std::size_t events = 12000;
  std::size_t batch = 3;
  std::size_t per_second = 4000;
  std::size_t authors = 8;
  std::size_t ep_tags = 0;
  std::size_t cpu_pause_us = 0;  // 0: count WAL pages
};

std::size_t count_arg(const std::string& flag, const char* value, std::size_t least = 1) {
  char* end = nullptr;
  const unsigned long long n = value == nullptr ? 0 : std::strtoull(value, &end, 10);
  if (value == nullptr || *value == '\0' || *end != '\0' || n < least) {
    bench::die(flag + " wants a count of at least " + std::to_string(least));
  }
  return static_cast<std::size_t>(n);
}

Config parse_args(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const char* value = i + 1 < argc ? argv[++i] : nullptr;
    if (flag == "--events") {
      c.events = count_arg(flag, value);
    } else if (flag == "--batch") {
      c.batch = count_arg(flag, value);
    } else if (flag == "--per-second") {
      c.per_second = count_arg(flag, value);
    } else if (flag == "--authors") {
      c.authors = count_arg(flag, value);
    } else if (flag == "--ep-tags") {
      c.ep_tags = count_arg(flag, value, 0);
    } else if (flag == "--cpu-pause-us") {
      c.cpu_pause_us = count_arg(flag, value);
    } else {
      bench::die("unknown flag " + flag +
                 " (--events N, --batch B, --per-second R, --authors A, --ep-tags K,"
                 " --cpu-pause-us P)");
    }
  }
  return c;
}

std::vector<relaycore::EventPtr> make_events(const Config& c) {
  bench::Generator gen(7);
  const std::vector<relaycore::Keypair> keys = gen.keys(c.authors);
  std::vector<relaycore::EventPtr> out;
  out.reserve(c.events);
  for (std::size_t i = 0; i < c.events; ++i) {
    relaycore::EventDraft draft;
    draft.created_at = 1700000000 + static_cast<std::int64_t>(i / c.per_second);
    draft.kind = 1;
    draft.tags.push_back({"t", "bench"});
    for (std::size_t t = 0; t < c.ep_tags; ++t) draft.tags.push_back(gen.tag());
    draft.content = "bench " + std::to_string(i) + " ";
    draft.content.resize(100, 'x');
    auto event = relaycore::sign_event(keys[i % keys.size()], std::move(draft));
    if (!event) bench::die("sign_event failed: " + event.error().message());
    out.push_back(std::move(event).value());
  }
  return out;
}

std::uint32_t big_endian(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// The page number of every frame in the WAL file, in order.
std::vector<std::uint32_t> wal_pages(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<unsigned char> wal((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
  if (wal.size() < 32) bench::die("no WAL at " + path);
  const std::size_t page_size = big_endian(&wal[8]);
  std::vector<std::uint32_t> pages;
  for (std::size_t at = 32; at + 24 + page_size <= wal.size(); at += 24 + page_size) {
    pages.push_back(big_endian(&wal[at]));
  }
  return pages;
}

// The B-tree (table or index name) each page of the database belongs to, from dbstat.
std::map<std::uint32_t, std::string> page_owners(const std::string& path) {
  sqlite3* db = nullptr;
  std::map<std::uint32_t, std::string> owners;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    bench::die("cannot open " + path);
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT pageno, name FROM dbstat", -1, &stmt, nullptr) != SQLITE_OK) {
    bench::die(std::string("dbstat: ") + sqlite3_errmsg(db));
  }
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    owners[static_cast<std::uint32_t>(sqlite3_column_int64(stmt, 0))] =
        reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return owners;
}

double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

// The --cpu-pause-us run: CPU time inside the commits, on a store with default options.
void time_commits(const Config& c, const std::vector<relaycore::EventPtr>& events,
                  const std::string& path) {
  relaycore::SqliteOptions options;
  options.path = path;
  auto storage = relaycore::new_sqlite_storage(options);
  if (!storage) bench::die("cannot open storage: " + storage.error().message());
  std::vector<relaycore::WriteResult> results;
  double cpu_us = 0;
  std::size_t commits = 0;
  for (std::size_t at = 0; at < events.size(); at += c.batch) {
    const std::size_t n = std::min(c.batch, events.size() - at);
    const double before = thread_cpu_us();
    if (relaycore::Status s = (*storage)->write_batch({events.data() + at, n}, results); !s) {
      bench::die("write_batch failed: " + s.message());
    }
    cpu_us += thread_cpu_us() - before;
    ++commits;
    std::this_thread::sleep_for(std::chrono::microseconds(c.cpu_pause_us));
  }
  std::printf(
      "%zu events in commits of %zu, %zu us apart: %.1f us of CPU per commit, %.1f per event\n",
      events.size(), c.batch, c.cpu_pause_us, cpu_us / double(commits),
      cpu_us / double(events.size()));
  storage->reset();
}

}  // namespace

int main(int argc, char** argv) {
  const Config c = parse_args(argc, argv);
  const std::vector<relaycore::EventPtr> events = make_events(c);

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("relaycore-bench-wal-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "wal.db").string();
  if (c.cpu_pause_us > 0) {
    time_commits(c, events, path);
    std::filesystem::remove_all(dir);
    return 0;
  }
  relaycore::SqliteOptions options;
  options.path = path;
  options.checkpoint_frames = UINT32_MAX;  // keep every frame in the WAL
  options.event_cache_entries = 0;
  auto storage = relaycore::new_sqlite_storage(options);
  if (!storage) bench::die("cannot open storage: " + storage.error().message());

  // The schema's own frames come before the first event's.
  const std::size_t schema_frames = wal_pages(path + "-wal").size();
  std::size_t commits = 0;
  std::vector<relaycore::WriteResult> results;
  for (std::size_t at = 0; at < events.size(); at += c.batch) {
    const std::size_t n = std::min(c.batch, events.size() - at);
    if (relaycore::Status s = (*storage)->write_batch({events.data() + at, n}, results); !s) {
      bench::die("write_batch failed: " + s.message());
    }
    for (const relaycore::WriteResult& r : results) {
      if (r.outcome != relaycore::WriteOutcome::kStored) bench::die("an event was not stored");
    }
    ++commits;
  }

  const std::vector<std::uint32_t> pages = wal_pages(path + "-wal");
  const std::map<std::uint32_t, std::string> owners = page_owners(path);
  std::map<std::string, std::size_t> by_tree;
  for (std::size_t i = schema_frames; i < pages.size(); ++i) {
    const auto it = owners.find(pages[i]);
    ++by_tree[it == owners.end() ? "(free or past the end)" : it->second];
  }
  const double frames = static_cast<double>(pages.size() - schema_frames);
  std::printf(
      "%zu events in commits of %zu, %zu a second of created_at, %zu authors, %zu e/p tags: "
      "%.1f WAL pages per commit, %.2f per event\n",
      events.size(), c.batch, c.per_second, c.authors, c.ep_tags, frames / double(commits),
      frames / double(events.size()));
  std::vector<std::pair<std::string, std::size_t>> rows(by_tree.begin(), by_tree.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [name, n] : rows) {
    std::printf("  %-32s %7.2f per commit %6.3f per event\n", name.c_str(),
                double(n) / double(commits), double(n) / double(events.size()));
  }
  storage->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
