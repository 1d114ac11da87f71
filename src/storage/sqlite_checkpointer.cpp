#include "storage/sqlite_checkpointer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "storage/sqlite_wal_buffer.hpp"
#include "util/thread_name.hpp"
#include "util/thread_priority.hpp"

namespace relaycore::storage {

SqliteCheckpointer::SqliteCheckpointer(std::unique_ptr<SqliteConnection> conn, sqlite3* writer,
                                       const std::string& path, std::uint32_t threshold_frames,
                                       Log log)
    : conn_(std::move(conn)),
      db_fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)),
      writer_(writer),
      threshold_(checkpoint_threshold(threshold_frames)),
      log_(std::move(log)) {
  sqlite3_wal_hook(writer_, &SqliteCheckpointer::on_commit, this);
  // A pass's copy goes to the disk as it is made, not in one burst at its sync, which every
  // commit's WAL sync would wait behind.
  if (Status s = pace_database_writes(conn_->handle()); !s) {
    log_.failure(LogLevel::kWarn, "storage: the checkpointer's writes are not paced", s.message());
  }
  thread_ = std::thread([this] { run(); });
}

SqliteCheckpointer::~SqliteCheckpointer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  pass_done_.notify_all();
  thread_.join();
  sqlite3_wal_hook(writer_, nullptr, nullptr);
  if (db_fd_ >= 0) ::close(db_fd_);
}

int SqliteCheckpointer::on_commit(void* self, sqlite3* db, const char* name, int frames) {
  static_cast<SqliteCheckpointer*>(self)->committed(db, name, frames);
  return SQLITE_OK;
}

void SqliteCheckpointer::committed(sqlite3* db, const char* name, int frames) {
  if (frames < last_frames_) {
    // The WAL started over: what the last pass copied was of the old one.
    std::lock_guard lock(mu_);
    ++cycle_;
    backfilled_ = -1;
  }
  last_frames_ = frames;
  if (frames < threshold_) return;
  int copied = -1;
  {
    std::lock_guard lock(mu_);
    copied = backfilled_;
  }
  const bool rest_is_small = copied >= 0 && copied <= frames && frames - copied <= kWriterRest;
  if (rest_is_small || frames >= 2 * threshold_) {
    std::uint64_t passes = 0;
    {
      std::lock_guard lock(mu_);
      passes = passes_;
    }
    // Busy while the thread is in a pass; this commit's successor tries again.
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc == SQLITE_BUSY && std::int64_t{frames} >= kStallFactor * std::int64_t{threshold_}) {
      // So far behind, the thread's pass is starved of CPU (see run()): the writer waits for it
      // to end, which bounds the WAL, and then copies the rest itself.
      {
        std::unique_lock lock(mu_);
        pass_done_.wait(lock, [&] { return passes_ != passes || stopping_; });
      }
      rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      log_.failure(LogLevel::kWarn, "storage: the writer's WAL checkpoint failed",
                   sqlite3_errstr(rc));
    }
    return;
  }
  if (!wanted_.exchange(true)) {
    { std::lock_guard lock(mu_); }
    cv_.notify_one();
  }
}

void SqliteCheckpointer::run() {
  // No OK waits for a pass, and on a busy machine a pass's burst of copying took a core from the
  // writer and the verifiers for milliseconds at a time: at normal priority in-process ingest
  // reached a tenth less of its verify-bound limit, and the OKs' p99 at 4,000 events/s over
  // WebSocket was up to a third higher. Behind, it falls back on the writer at twice the
  // threshold.
  if (!lower_this_thread_priority()) {
    log_.write(LogLevel::kDebug, "storage: the checkpointer runs at normal priority");
  }
  // Named once its priority is set, so that whoever sees the name sees the priority too.
  name_this_thread("rc-checkpoint");
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || wanted_.load(); });
    if (stopping_) return;
    const std::uint64_t cycle = cycle_;
    lock.unlock();
    wanted_.store(false);
    int frames = 0;
    int copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(conn_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             &frames, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      log_.failure(LogLevel::kWarn, "storage: a WAL checkpoint failed", sqlite3_errstr(rc));
    }
    // A pass that stops short of the WAL's end leaves its pages unsynced; the pass that
    // reaches the end syncs them all, and that is the writer's. Synced here, they cost it little.
    if (rc == SQLITE_OK && copied > 0 && db_fd_ >= 0 && ::fdatasync(db_fd_) != 0) {
      log_.failure(LogLevel::kWarn, "storage: syncing the checkpointed database failed",
                   std::strerror(errno));
    }
    lock.lock();
    if (rc == SQLITE_OK) {
      // A WAL that started over during the pass makes its count meaningless.
      if (cycle == cycle_) backfilled_ = copied;
    }
    ++passes_;
    pass_done_.notify_all();
  }
}

}  // namespace relaycore::storage
