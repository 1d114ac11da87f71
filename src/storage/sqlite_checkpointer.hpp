// SqliteCheckpointer: copies the WAL back into the database file on a thread of its own, so that
// the writer does not stop for the copy.
//
// With SQLite's automatic checkpoint, the commit that takes the WAL past its threshold copies
// every page the WAL holds into the database file and syncs it before the writer can go on:
// tens of milliseconds during which every OK waits. Here, once the WAL passes
// SqliteOptions::checkpoint_frames, the checkpointer thread copies it in passive passes, which
// never block the writer, one after another while commits keep coming. The WAL can only start
// over once everything in it has been copied; when a pass leaves little behind, the writer
// copies that rest itself right after its next commit, which takes a few hundred pages rather
// than the whole WAL. The thread runs at a low priority (kBackgroundNice), since no OK waits for
// it, and its copy goes to the disk as it is made (pace_database_writes), so that the commits'
// WAL syncs never wait behind a pass's burst; should it fall behind, the writer takes over at twice
// the threshold, as SQLite's own checkpoint would, and at four times it waits for a pass the thread
// is starved in, so that the WAL stays bounded on a saturated machine.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "storage/sqlite_connection.hpp"
#include "util/log.hpp"

namespace relaycore::storage {

// SqliteOptions::checkpoint_frames as the WAL length SQLite and the checkpointer compare with:
// at least 1, and at most 2^30 (4 TiB of 4 KiB pages), so that the int SQLite takes, and twice
// it, cannot overflow.
inline int checkpoint_threshold(std::uint32_t frames) {
  constexpr std::uint32_t kMost = std::uint32_t{1} << 30;
  return static_cast<int>(frames == 0 ? 1 : frames > kMost ? kMost : frames);
}

class SqliteCheckpointer {
 public:
  // `conn` is a read-write connection of its own to the writer's database; `writer` is the
  // writer's, on which the checkpointer installs itself as the WAL hook (which turns SQLite's
  // automatic checkpoint off). Starts the thread.
  // `path` is the database file, which the thread syncs after each pass.
  SqliteCheckpointer(std::unique_ptr<SqliteConnection> conn, sqlite3* writer,
                     const std::string& path, std::uint32_t threshold_frames, Log log);
  // Stops the thread; the writer's WAL hook is removed.
  ~SqliteCheckpointer();
  SqliteCheckpointer(const SqliteCheckpointer&) = delete;
  SqliteCheckpointer& operator=(const SqliteCheckpointer&) = delete;

 private:
  // What the writer leaves to copy itself, in frames.
  static constexpr int kWriterRest = 256;
  // A WAL this many times the threshold long makes the writer wait for a pass the thread is in.
  static constexpr std::int64_t kStallFactor = 4;

  // The WAL hook: runs on the writer's thread after each commit, with the WAL's length.
  static int on_commit(void* self, sqlite3* db, const char* name, int frames);
  void committed(sqlite3* db, const char* name, int frames);
  void run();

  std::unique_ptr<SqliteConnection> conn_;
  // The database file, opened for fdatasync(); -1 if it could not be (the writer's final pass
  // then syncs everything).
  const int db_fd_;
  sqlite3* const writer_;
  const int threshold_;
  const Log log_;
  // Set by a commit that wants a pass, cleared as the thread starts one.
  std::atomic<bool> wanted_{false};
  // The WAL's length at the last commit; the writer's thread only.
  int last_frames_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  // Under mu_: how often the WAL has started over, and how much of the current one the last
  // pass copied (-1 before any).
  std::uint64_t cycle_ = 0;
  int backfilled_ = -1;
  // Under mu_: passes the thread has finished; pass_done_ is notified after each.
  std::uint64_t passes_ = 0;
  std::condition_variable pass_done_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace relaycore::storage
