// The SQLite writer's WAL write buffering (src/storage/sqlite_wal_buffer.*): a commit must be
// in the file, whole, by the time write_batch returns, whatever its size, because other
// connections read it from there as soon as the commit is published.
#include <fcntl.h>
#include <linux/magic.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../conformance/conformance_support.hpp"
#include "../conformance/temp_dir.hpp"
#include "sqlite_raw_db.hpp"
#include "storage/sqlite_connection.hpp"
#include "storage/sqlite_wal_buffer.hpp"
#include "util/thread_priority.hpp"

namespace relaycore {
namespace {

using conformance::event;
using conformance::TempDir;
using test::open_at;
using test::RawDb;

// `n` events with `content_bytes` of content and a few tags, created_at from `first`.
std::vector<EventPtr> batch_of(std::size_t n, std::size_t content_bytes, std::int64_t first) {
  std::vector<EventPtr> events;
  events.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::string content(content_bytes, static_cast<char>('a' + i % 26));
    content += std::to_string(i);
    events.push_back(event(i % 2 ? test::alice() : test::bob(),
                           first + static_cast<std::int64_t>(i), content,
                           {{"t", "topic" + std::to_string(i % 7)}, {"r", std::to_string(i)}}));
  }
  return events;
}

std::string wal_mode_name(SqliteSync sync, bool buffered) {
  return std::string(sync == SqliteSync::kFull ? "FULL" : "NORMAL") +
         (buffered ? ", buffering on" : ", buffering off");
}

// The nice value of this process's thread named `name`, from /proc; nothing while there is none.
std::optional<int> nice_of_thread(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string found;
    if (!std::getline(comm, found) || found != name) continue;
    std::ifstream stat_file(task.path() / "stat");
    std::string stat;
    std::getline(stat_file, stat);
    // The fields after the name in parentheses start at the state, the third; nice is the 19th.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int i = 3; i < 19; ++i) fields >> field;
    int nice = 0;
    if (fields >> nice) return nice;
  }
  return std::nullopt;
}

// Bytes of `path` in the page cache that are not yet on the disk: the kernel is asked to drop
// the file's clean pages (which starts writeback of the dirty ones, but cannot drop them before
// it ends), and what stays is counted. Writeback of megabytes takes milliseconds, and the count
// follows at once.
std::size_t unwritten_bytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const auto size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
  REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  REQUIRE(map != MAP_FAILED);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  REQUIRE(::mincore(map, size, resident.data()) == 0);
  ::munmap(map, size);
  ::close(fd);
  return page * static_cast<std::size_t>(std::count_if(resident.begin(), resident.end(),
                                                       [](unsigned char r) { return r & 1; }));
}

// Checkpoints a WAL holding `bytes` of new pages into the database file of `path` through a
// connection of its own that does not sync, paced or not; returns the checkpoint's bytes still
// waiting for the disk.
std::size_t checkpoint_unsynced(const std::string& path, std::size_t bytes, bool paced) {
  auto writer = storage::SqliteConnection::open(path, /*read_only=*/false);
  REQUIRE(writer);
  REQUIRE((*writer)->exec("PRAGMA journal_mode = WAL", "wal"));
  REQUIRE((*writer)->exec("PRAGMA wal_autocheckpoint = 0", "no automatic checkpoint"));
  REQUIRE((*writer)->exec("CREATE TABLE blobs (b BLOB)", "table"));
  const std::string fill =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
      "WHERE i < " +
      std::to_string(bytes / 4000) + ") INSERT INTO blobs SELECT randomblob(4000) FROM n";
  REQUIRE((*writer)->exec(fill.c_str(), "fill"));

  auto checkpointer = storage::SqliteConnection::open(path, /*read_only=*/false);
  REQUIRE(checkpointer);
  REQUIRE((*checkpointer)->exec("PRAGMA synchronous = OFF", "no sync"));
  if (paced) REQUIRE(storage::pace_database_writes((*checkpointer)->handle()));
  int frames = 0;
  int copied = 0;
  REQUIRE(sqlite3_wal_checkpoint_v2((*checkpointer)->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                    &frames, &copied) == SQLITE_OK);
  REQUIRE(copied == frames);
  REQUIRE(std::filesystem::file_size(path) >= bytes);
  return unwritten_bytes(path);
}

}  // namespace

TEST_CASE("sqlite: a commit is whole in the file when write_batch returns, for another connection",
          "[storage][sqlite][wal]") {
  const SqliteSync sync = GENERATE(SqliteSync::kFull, SqliteSync::kNormal);
  const bool buffered = GENERATE(true, false);
  INFO(wal_mode_name(sync, buffered));
  TempDir dir;
  SqliteOptions options;
  options.synchronous = sync;
  options.buffer_wal_writes = buffered;
  auto s = open_at(dir.file("events.db"), options);
  RawDb other(dir.file("events.db"));  // the default VFS, its own file handles
  std::int64_t created = 1000;
  std::size_t total = 0;
  // Small commits, one of about the buffer's size, and one of several times it.
  for (std::size_t n : {1, 3, 40, 600, 2500}) {
    std::vector<EventPtr> events = batch_of(n, 1500, created);
    created += static_cast<std::int64_t>(n);
    conformance::write(*s, events);
    total += n;
    CHECK(other.text("SELECT COUNT(*) FROM events") == std::to_string(total));
    CHECK(other.text("SELECT json FROM events ORDER BY seq DESC LIMIT 1") ==
          std::string(events.back()->json()));
  }
  CHECK(other.text("PRAGMA integrity_check") == "ok");
}

TEST_CASE("sqlite: a buffered commit several MiB large survives reopen and checkpoints",
          "[storage][sqlite][wal]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  std::vector<EventPtr> events = batch_of(3000, 3000, 5000);
  {
    auto s = open_at(path);
    std::vector<WriteResult> results = conformance::write(*s, events);
    for (const WriteResult& r : results) REQUIRE(r.outcome == WriteOutcome::kStored);
    // A page written twice in one transaction is rewritten in place in the WAL: replace the
    // same replaceable slot over and over inside one batch.
    std::vector<EventPtr> profiles;
    for (int i = 0; i < 200; ++i) {
      profiles.push_back(event(test::alice(), 9000 + i, std::string(2000, 'p'), {}, 0));
    }
    conformance::write(*s, profiles);
  }
  {
    RawDb db(path);
    CHECK(db.text("PRAGMA wal_checkpoint(TRUNCATE)") == "0");  // not busy: every frame copied
    CHECK(db.text("PRAGMA integrity_check") == "ok");
  }
  auto s = open_at(path);
  CHECK(conformance::query_ids(*s, conformance::with_tag('t', {"topic3"})).size() ==
        static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [](const EventPtr& e) {
          return e->tags()[0][1] == "topic3";
        })));
  std::vector<StoredEvent> newest = conformance::query(*s, conformance::with_kinds({0}));
  REQUIRE(newest.size() == 1);
  CHECK(newest[0].event->created_at() == 9199);
  CHECK(conformance::max_seq(*s) >= events.size());
}

// Broken by a writer that no longer checkpoints (the WAL would grow by every commit), or by
// checkpoints that never let the WAL start over while commits keep coming.
TEST_CASE("sqlite: the WAL is copied back and starts over while commits keep coming",
          "[storage][sqlite][wal]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  constexpr std::uint32_t kThreshold = 64;
  constexpr int kCommits = 300;
  SqliteOptions options;
  options.checkpoint_frames = kThreshold;
  std::uintmax_t largest_wal = 0;
  std::int64_t created = 1000;
  {
    auto s = open_at(path, options);
    for (int i = 0; i < kCommits; ++i) {
      conformance::write(*s, batch_of(4, 600, created));
      created += 4;
      largest_wal = std::max(largest_wal, std::filesystem::file_size(path + "-wal"));
    }
    // Every commit is there for other connections, whatever was copied back.
    RawDb other(path);
    CHECK(other.text("SELECT COUNT(*) FROM events") == std::to_string(kCommits * 4));
  }
  // Each commit adds about 40 pages: kept, the WAL would reach about 12,800 (52 MB). Started
  // over, it passes twice the threshold (where the writer copies the rest itself) only by the
  // commits made while the thread finishes a pass, and four times it (where the writer waits for
  // that pass) by one commit at most, however starved of CPU the thread is.
  const std::uintmax_t frame = 4096 + 24;
  CHECK(largest_wal <= 8 * kThreshold * frame);
  RawDb db(path);
  CHECK(db.text("PRAGMA integrity_check") == "ok");
  CHECK(db.text("SELECT COUNT(*) FROM events") == std::to_string(kCommits * 4));
}

// The checkpointer's passes are bursts of copying that no OK waits for; at normal priority they
// took cores from the writer and the verifiers on a busy machine.
TEST_CASE("sqlite: the checkpointer thread runs below normal priority", "[storage][sqlite][wal]") {
  TempDir dir;
  errno = 0;
  const int ours = ::getpriority(PRIO_PROCESS, 0);
  REQUIRE(errno == 0);
  auto s = open_at(dir.file("events.db"), SqliteOptions{});
  // The thread names itself once its priority is set.
  std::optional<int> nice;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(nice = nice_of_thread("rc-checkpoint")) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  REQUIRE(nice);
  CHECK(*nice == kBackgroundNice);
  // Only that thread: the one that opened the store, and so the writer's caller, keeps its own.
  CHECK(::getpriority(PRIO_PROCESS, 0) == ours);
}

// Broken by a threshold taken as a negative int (any value past 2^31 was, and the WAL was then
// copied back after every commit) or by one that overflows when doubled.
TEST_CASE("sqlite: the largest checkpoint_frames keeps every commit in the WAL",
          "[storage][sqlite][wal]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  SqliteOptions options;
  options.checkpoint_frames = UINT32_MAX;
  auto s = open_at(path, options);
  std::uintmax_t last = 0;
  for (int i = 0; i < 20; ++i) {
    conformance::write(*s, batch_of(4, 600, 1000 + 4 * i));
    const std::uintmax_t wal = std::filesystem::file_size(path + "-wal");
    CHECK(wal > last);  // grown by this commit, never started over
    last = wal;
  }
}

// A checkpoint's copy must reach the disk as it is made: left in the page cache, it all goes to
// the disk at the checkpoint's sync, and every commit's WAL sync meanwhile waits behind it.
TEST_CASE("sqlite: a paced checkpoint leaves at most kPaceBytes of its copy unwritten",
          "[storage][sqlite][wal]") {
  TempDir dir;
  struct statfs fs {};
  REQUIRE(::statfs(dir.path().c_str(), &fs) == 0);
  if (fs.f_type == TMPFS_MAGIC) {
    WARN("the temporary directory is on tmpfs, which never writes back: nothing to observe");
    return;
  }
  constexpr std::size_t kBytes = std::size_t{16} << 20;
  // Unpaced, the copy stays in the page cache, which is what makes this a test of pacing.
  CHECK(checkpoint_unsynced(dir.file("unpaced.db"), kBytes, false) > kBytes / 2);
  CHECK(checkpoint_unsynced(dir.file("paced.db"), kBytes, true) <= storage::kPaceBytes);
}

}  // namespace relaycore
