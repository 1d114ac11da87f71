// The SQLite audit sink: a bounded queue in front of one writer thread that appends each batch
// of records to the hash chain in one transaction.
#include "audit/sqlite_audit_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <thread>
#include <utility>

#include "audit/audit_chain.hpp"
#include "audit/audit_db.hpp"
#include "util/cleanup_status.hpp"

namespace relaycore {
namespace audit {
namespace {

using namespace std::chrono_literals;

// How long the writer waits before retrying a batch SQLite refused (disk full, a lock held
// too long), doubling up to the maximum. Accepted records are retried, never dropped.
constexpr std::chrono::milliseconds kRetryFirst = 50ms;
constexpr std::chrono::milliseconds kRetryMax = 1000ms;
// Once close() has been called, the writer tries a failing batch this many more times before it
// gives up and close() reports how many records were lost.
constexpr int kFinalAttempts = 3;

// Where the chain ends: the next record gets seq + 1 and prev_hash = hash.
struct ChainTip {
  std::uint64_t seq = 0;
  crypto::Digest hash{};
  std::uint64_t last_event_seq = 0;
};

bool counts_for_event_seq(AuditAction action) {
  return action == AuditAction::kEventCreated || action == AuditAction::kRecovered;
}

// [Threading] enqueue(), queued(), last_event_seq() and close() may be called from any thread.
//   The SQLite connection, the statements and tip_ belong to the writer thread once it starts,
//   and to close() once it has joined the writer. Everything else is guarded by mu_.
class SqliteAuditLog final : public AuditSink {
 public:
  SqliteAuditLog(Db db, Stmt insert, Stmt update_head, ChainTip tip, std::size_t capacity,
                 std::chrono::microseconds append_delay)
      : db_(std::move(db)),
        insert_(std::move(insert)),
        update_head_(std::move(update_head)),
        tip_(tip),
        capacity_(capacity),
        append_delay_(append_delay),
        last_event_seq_(tip.last_event_seq) {
    writer_ = std::thread([this] { run(); });
  }

  // A sink used by a Relay was closed, and its result reported, by Relay::shutdown(); here
  // close() only returns that result again. A host that drops a sink it never closed gives up
  // the report of what was lost.
  ~SqliteAuditLog() override { static_cast<void>(close()); }

  SqliteAuditLog(const SqliteAuditLog&) = delete;
  SqliteAuditLog& operator=(const SqliteAuditLog&) = delete;

  Status enqueue(std::vector<AuditRecord> records) override {
    if (records.empty()) return Status::ok();
    for (const AuditRecord& r : records) {
      if (!action_from_code(static_cast<std::int64_t>(r.action))) {
        return Status::error("audit: record has an unknown action");
      }
    }
    std::unique_lock lock(mu_);
    changed_.wait(lock,
                  [&] { return stopping_ || !write_error_.is_ok() || has_room(records.size()); });
    if (stopping_) return Status::error("audit: the audit log is closed");
    if (!write_error_.is_ok()) return write_error_;
    std::move(records.begin(), records.end(), std::back_inserter(queue_));
    lock.unlock();
    wake_writer_.notify_one();
    return Status::ok();
  }

  Result<std::uint64_t> last_event_seq() override {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return drained() || !write_error_.is_ok() || writer_done_; });
    if (!drained()) {
      return write_error_.is_ok() ? Status::error("audit: queued records were not written")
                                  : write_error_;
    }
    return last_event_seq_;
  }

  Status close() override {
    std::lock_guard close_lock(close_mu_);
    if (closed_) return close_status_;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_writer_.notify_all();
    changed_.notify_all();
    if (writer_.joinable()) writer_.join();
    insert_.reset();
    update_head_.reset();
    db_.reset();  // checkpoints the WAL into the database file
    Status status;
    {
      std::lock_guard lock(mu_);
      if (lost_ > 0) {
        status = Status::error(fmt::format("audit: {} records could not be written: {}", lost_,
                                           write_error_.detail()));
      }
    }
    closed_ = true;
    close_status_ = status;
    return status;
  }

  std::size_t queued() const override {
    std::lock_guard lock(mu_);
    return queue_.size() + in_flight_;
  }

 private:
  // A batch fits while the records not yet durable stay within the capacity. A batch larger
  // than the whole capacity is let in once the queue is empty, so that it cannot wait forever.
  bool has_room(std::size_t n) const {
    std::size_t pending = queue_.size() + in_flight_;
    return pending == 0 || pending + n <= capacity_;
  }

  bool drained() const { return queue_.empty() && in_flight_ == 0; }

  // The writer thread: takes everything queued as one batch, appends it, and repeats until
  // close() has been called and the queue is empty.
  void run() {
    std::chrono::milliseconds backoff = kRetryFirst;
    int final_failures = 0;
    for (;;) {
      std::vector<AuditRecord> batch;
      {
        std::unique_lock lock(mu_);
        wake_writer_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.end()));
        queue_.clear();
        in_flight_ = batch.size();
      }
      Status status = append(batch);
      bool give_up = false;
      bool stopping = false;
      {
        std::lock_guard lock(mu_);
        in_flight_ = 0;
        stopping = stopping_;
        if (status.is_ok()) {
          write_error_ = Status::ok();
          last_event_seq_ = tip_.last_event_seq;
          backoff = kRetryFirst;
        } else {
          write_error_ = status;
          if (stopping_ && ++final_failures >= kFinalAttempts) {
            lost_ = batch.size() + queue_.size();
            queue_.clear();
            give_up = true;
          } else {
            queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()),
                          std::make_move_iterator(batch.end()));
          }
        }
      }
      changed_.notify_all();
      if (give_up) break;
      if (!status.is_ok()) {
        if (stopping) {
          std::this_thread::sleep_for(kRetryFirst);
        } else {
          std::unique_lock lock(mu_);
          wake_writer_.wait_for(lock, backoff, [&] { return stopping_; });
          backoff = std::min(backoff * 2, kRetryMax);
        }
      }
    }
    {
      std::lock_guard lock(mu_);
      writer_done_ = true;
    }
    changed_.notify_all();
  }

  // Appends one batch in one transaction: the records, chained, and the new head. tip_ moves
  // only once the commit has succeeded, so a failed batch can be retried as it is.
  Status append(const std::vector<AuditRecord>& batch) {
    if (append_delay_.count() > 0) std::this_thread::sleep_for(append_delay_);
    sqlite3* db = db_.get();
    if (Status s = exec(db, "BEGIN IMMEDIATE"); !s) return s;
    ChainTip tip = tip_;
    Status status = insert_all(batch, tip);
    if (status.is_ok() && sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      status = sqlite_error(db, "commit");
    }
    if (!status.is_ok()) {
      if (sqlite3_get_autocommit(db) != 0) return status;
      return with_cleanup(status, exec(db, "ROLLBACK"));
    }
    tip_ = tip;
    return Status::ok();
  }

  Status insert_all(const std::vector<AuditRecord>& batch, ChainTip& tip) {
    sqlite3* db = db_.get();
    sqlite3_stmt* insert = insert_.get();
    for (const AuditRecord& r : batch) {
      std::uint64_t seq = tip.seq + 1;
      crypto::Digest hash = record_hash(sha_, seq, r, tip.hash);
      sqlite3_bind_int64(insert, 1, static_cast<sqlite3_int64>(seq));
      sqlite3_bind_int64(insert, 2, r.timestamp);
      sqlite3_bind_int64(insert, 3, static_cast<sqlite3_int64>(r.action));
      sqlite3_bind_blob(insert, 4, r.event_id.data(), 32, SQLITE_STATIC);
      sqlite3_bind_int64(insert, 5, r.kind);
      sqlite3_bind_blob(insert, 6, r.actor.data(), 32, SQLITE_STATIC);
      sqlite3_bind_int64(insert, 7, static_cast<sqlite3_int64>(r.event_seq));
      sqlite3_bind_blob(insert, 8, tip.hash.data(), 32, SQLITE_STATIC);
      sqlite3_bind_blob(insert, 9, hash.data(), 32, SQLITE_STATIC);
      int rc = sqlite3_step(insert);
      sqlite3_reset(insert);
      sqlite3_clear_bindings(insert);
      if (rc != SQLITE_DONE) return sqlite_error(db, "append record");
      tip.seq = seq;
      tip.hash = hash;
      if (counts_for_event_seq(r.action)) {
        tip.last_event_seq = std::max(tip.last_event_seq, r.event_seq);
      }
    }
    sqlite3_stmt* head = update_head_.get();
    sqlite3_bind_int64(head, 1, static_cast<sqlite3_int64>(tip.seq));
    sqlite3_bind_blob(head, 2, tip.hash.data(), 32, SQLITE_STATIC);
    sqlite3_bind_int64(head, 3, static_cast<sqlite3_int64>(tip.last_event_seq));
    int rc = sqlite3_step(head);
    sqlite3_reset(head);
    sqlite3_clear_bindings(head);
    if (rc != SQLITE_DONE) return sqlite_error(db, "update head");
    if (sqlite3_changes(db) != 1) return Status::error("audit: the head row is missing");
    return Status::ok();
  }

  // Writer-thread state (see [Threading]).
  Db db_;
  Stmt insert_;
  Stmt update_head_;
  ChainTip tip_;
  crypto::Sha256 sha_;
  const std::size_t capacity_;
  const std::chrono::microseconds append_delay_;
  std::thread writer_;

  mutable std::mutex mu_;
  std::condition_variable wake_writer_;  // work arrived, or close() was called
  std::condition_variable changed_;      // room freed, batch written, error, or writer done
  std::deque<AuditRecord> queue_;
  std::size_t in_flight_ = 0;  // records the writer has taken but not yet committed
  std::uint64_t last_event_seq_ = 0;
  Status write_error_;  // the last append's failure, until an append succeeds again
  bool stopping_ = false;
  bool writer_done_ = false;
  std::size_t lost_ = 0;

  std::mutex close_mu_;  // serialises close() calls; guards closed_ and close_status_
  bool closed_ = false;
  Status close_status_;
};

// Turns on WAL and full fsync, and creates the schema if the file is new. Refuses a database
// that holds something else, or a later format version.
Status prepare_database(sqlite3* db) {
  sqlite3_busy_timeout(db, 5000);
  {
    Result<Stmt> wal = prepare(db, "PRAGMA journal_mode = WAL");
    if (!wal) return wal.error();
    if (sqlite3_step(wal->get()) != SQLITE_ROW) return sqlite_error(db, "set WAL mode");
    auto mode = reinterpret_cast<const char*>(sqlite3_column_text(wal->get(), 0));
    if (mode == nullptr || std::string_view(mode) != "wal") {
      return Status::error("audit: the database cannot use WAL mode");
    }
  }
  if (Status s = exec(db, "PRAGMA synchronous = FULL"); !s) return s;
  if (Status s = exec(db, "BEGIN IMMEDIATE"); !s) return s;
  Status status = [&]() -> Status {
    Result<std::int64_t> version = read_format_version(db);
    if (!version) return version.error();
    if (*version == kFormatVersion) return Status::ok();
    if (*version != 0) {
      return Status::error(fmt::format("audit: unsupported format version {}", *version));
    }
    Result<Stmt> any = prepare(db, "SELECT count(*) FROM sqlite_master");
    if (!any) return any.error();
    if (sqlite3_step(any->get()) != SQLITE_ROW) return sqlite_error(db, "read schema");
    if (sqlite3_column_int64(any->get(), 0) != 0) {
      return Status::error("audit: the database is not a relaycore audit log");
    }
    if (Status s = exec(db, kSchemaSql); !s) return s;
    return exec(db, "INSERT INTO meta VALUES ('format_version', 1)");
  }();
  if (status.is_ok()) status = exec(db, "COMMIT");
  if (status.is_ok() || sqlite3_get_autocommit(db) != 0) return status;
  return with_cleanup(status, exec(db, "ROLLBACK"));
}

// Reads the head row and checks that it names the last record, so that an append never
// continues a chain whose tail has been cut off.
Result<ChainTip> read_tip(sqlite3* db) {
  Result<Stmt> head = prepare(db, "SELECT seq, hash, last_event_seq FROM head WHERE id = 1");
  if (!head) return head.error();
  ChainTip tip;
  std::int64_t seq = 0;
  std::int64_t last_event_seq = 0;
  if (sqlite3_step(head->get()) != SQLITE_ROW || !column_int(head->get(), 0, seq) ||
      !column_bytes(head->get(), 1, tip.hash) || !column_int(head->get(), 2, last_event_seq) ||
      seq < 0) {
    return Status::error("audit: the head row is missing or broken; run relaycore-audit verify");
  }
  tip.seq = static_cast<std::uint64_t>(seq);
  tip.last_event_seq = static_cast<std::uint64_t>(last_event_seq);

  Result<Stmt> last = prepare(db, "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1");
  if (!last) return last.error();
  std::int64_t last_seq = 0;
  crypto::Digest last_hash{};
  int rc = sqlite3_step(last->get());
  if (rc == SQLITE_ROW) {
    if (!column_int(last->get(), 0, last_seq) || !column_bytes(last->get(), 1, last_hash)) {
      return Status::error("audit: the last record is broken; run relaycore-audit verify");
    }
  } else if (rc != SQLITE_DONE) {
    return sqlite_error(db, "read last record");
  }
  if (last_seq != seq || last_hash != tip.hash) {
    return Status::error(fmt::format(
        "audit: the head says the log ends at record {} but the last record is {}; the log was "
        "truncated or tampered with; run relaycore-audit verify",
        seq, last_seq));
  }
  return tip;
}

}  // namespace

Result<std::shared_ptr<AuditSink>> new_sqlite_audit_log(const SqliteAuditOptions& options,
                                                        std::chrono::microseconds append_delay) {
  if (options.queue_capacity == 0) {
    return Status::error("audit: queue_capacity must be at least 1");
  }
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(options.path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return sqlite_error(db.get(), "open " + options.path);
  if (Status s = prepare_database(db.get()); !s) return s;
  Result<ChainTip> tip = read_tip(db.get());
  if (!tip) return tip.error();
  Result<Stmt> insert = prepare(db.get(),
                                "INSERT INTO records (seq, timestamp, action, event_id, kind, "
                                "actor, event_seq, prev_hash, hash) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!insert) return insert.error();
  Result<Stmt> update_head =
      prepare(db.get(), "UPDATE head SET seq = ?, hash = ?, last_event_seq = ? WHERE id = 1");
  if (!update_head) return update_head.error();
  return std::shared_ptr<AuditSink>(std::make_shared<SqliteAuditLog>(
      std::move(db), std::move(insert).value(), std::move(update_head).value(), *tip,
      options.queue_capacity, append_delay));
}

}  // namespace audit

Result<std::shared_ptr<AuditSink>> new_sqlite_audit_log(const SqliteAuditOptions& options) {
  return audit::new_sqlite_audit_log(options, std::chrono::microseconds(0));
}

}  // namespace relaycore
