// SQLite storage: one writer connection behind a mutex, and a pool of read-only connections
// leased one per call. WAL mode lets the readers run while the writer commits; each read sees
// the last commit made before its statement started.
//
// A visitor runs while its call holds a reader lease, so it must not call back into the same
// storage (with every lease taken, it would wait for itself).
//
// An event cache (SqliteOptions::event_cache_entries) sits in front: the writer updates it after
// each commit, and a filter listing ids takes SQLite's rows only for the ids it lacks.
#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "relaycore/sqlite.hpp"
#include "storage/connection_pool.hpp"
#include "storage/sqlite_checkpointer.hpp"
#include "storage/sqlite_connection.hpp"
#include "storage/sqlite_event_cache.hpp"
#include "storage/sqlite_read.hpp"
#include "storage/sqlite_schema.hpp"
#include "storage/sqlite_search.hpp"
#include "storage/sqlite_write.hpp"
#include "storage/storage_util.hpp"
#include "util/log.hpp"

namespace relaycore {
namespace {

using storage::SqliteConnection;

// Reader connections, each used by one thread at a time.
using ReaderPool = storage::ConnectionPool<SqliteConnection>;

class SqliteStorage final : public Storage {
 public:
  SqliteStorage(std::unique_ptr<SqliteConnection> writer, std::size_t cache_entries,
                std::optional<storage::SearchBacklog> backlog, std::shared_ptr<Logger> logger)
      : backlog_(std::move(backlog)),
        log_(logger ? Log(std::move(logger), LogLevel::kDebug) : Log()),
        writer_(std::move(writer)),
        cache_(cache_entries == 0 ? nullptr
                                  : std::make_unique<storage::EventCache>(cache_entries)) {}

  // A store closed in order leaves no search backlog for the next open to read.
  ~SqliteStorage() override {
    if (!backlog_ || backlog_->events.empty()) return;
    std::lock_guard lock(writer_mutex_);
    if (Status s = storage::sqlite_index_backlog(*writer_, *backlog_); !s) {
      log_.failure(LogLevel::kWarn,
                   "storage: the search index's backlog stays for the next open to add",
                   s.message());
    }
  }

  ReaderPool& readers() noexcept { return readers_; }

  // Hands the WAL's checkpoints to a thread of their own, on `conn` (see SqliteCheckpointer).
  void start_checkpointer(std::unique_ptr<SqliteConnection> conn, const std::string& path,
                          std::uint32_t frames) {
    checkpointer_ = std::make_unique<storage::SqliteCheckpointer>(
        std::move(conn), writer_->handle(), path, frames, log_);
  }

  Status write_batch(std::span<const EventPtr> events, std::vector<WriteResult>& results) override {
    std::lock_guard lock(writer_mutex_);
    Status s = storage::sqlite_write_batch(*writer_, events, results, backlog());
    if (s && cache_) update_cache(events, results);
    return s;
  }

  Status query(const Filter& filter, const QueryRequest& request,
               const std::function<bool(const StoredEvent&)>& visit) override {
    // Search is SQLite's to decide; the cache answers only what Filter::matches decides.
    if (cache_ && filter.ids && !filter.search) return query_ids(filter, request, visit);
    auto lease = readers_.acquire();
    return storage::sqlite_query(*lease, filter, request, visit, cache_.get(), &log_);
  }

  Status scan_keys(const Filter& filter, const QueryRequest& request,
                   const std::function<bool(const EventKey&)>& visit) override {
    if (filter.search) return Storage::scan_keys(filter, request, visit);
    auto lease = readers_.acquire();
    return storage::sqlite_scan_keys(*lease, filter, request, visit);
  }

  Result<std::uint64_t> count(const std::vector<Filter>& filters,
                              const QueryRequest& request) override {
    auto lease = readers_.acquire();
    return storage::sqlite_count(*lease, filters, request);
  }

  Result<bool> contains(const EventId& id) override {
    auto lease = readers_.acquire();
    return storage::sqlite_contains(*lease, id);
  }

  Result<std::uint64_t> max_seq() override {
    auto lease = readers_.acquire();
    return storage::sqlite_max_seq(*lease);
  }

  Status scan_since(std::uint64_t after_seq,
                    const std::function<bool(const StoredEvent&)>& visit) override {
    auto lease = readers_.acquire();
    return storage::sqlite_scan_since(*lease, after_seq, visit, &log_);
  }

  Result<std::vector<RemovedEvent>> purge_expired(std::int64_t now) override {
    std::lock_guard lock(writer_mutex_);
    auto purged = storage::sqlite_purge_expired(*writer_, now, backlog());
    if (purged && !purged->empty() && cache_) {
      std::vector<EventId> ids;
      ids.reserve(purged->size());
      for (const RemovedEvent& gone : *purged) ids.push_back(gone.id);
      cache_->erase(ids);
    }
    return purged;
  }

  Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) override {
    std::lock_guard lock(writer_mutex_);
    auto erased = storage::sqlite_erase(*writer_, ids, backlog());
    if (erased && cache_) cache_->erase(ids);
    return erased;
  }

  Result<std::uint64_t> size_bytes() override {
    std::lock_guard lock(writer_mutex_);
    return storage::sqlite_size_bytes(*writer_);
  }

  // Adds the search index's backlog, then merges the index, which commits leave to idle time
  // (sqlite_search.hpp).
  Result<bool> maintain() override {
    if (!backlog_) return false;
    std::lock_guard lock(writer_mutex_);
    if (!backlog_->events.empty()) {
      if (Status s = storage::sqlite_index_backlog(*writer_, *backlog_); !s) return s;
      return true;
    }
    return storage::sqlite_merge_search(*writer_);
  }

 private:
  storage::SearchBacklog* backlog() noexcept { return backlog_ ? &*backlog_ : nullptr; }

  // After a committed batch: forgets what it removed, then caches what it stored and kept (an
  // event a later event of the same batch deleted was never visible).
  void update_cache(std::span<const EventPtr> events, const std::vector<WriteResult>& results) {
    std::vector<EventId> removed;
    for (const WriteResult& r : results) {
      for (const RemovedEvent& gone : r.removed) removed.push_back(gone.id);
    }
    cache_->erase(removed);
    std::sort(removed.begin(), removed.end());
    for (std::size_t i = 0; i < events.size(); ++i) {
      const WriteResult& r = results[i];
      if (r.outcome != WriteOutcome::kStored && r.outcome != WriteOutcome::kReplaced) continue;
      if (std::binary_search(removed.begin(), removed.end(), events[i]->id())) continue;
      cache_->insert_stored(StoredEvent{events[i], r.seq});
    }
  }

  // A filter listing ids: the cached ones from the cache, the others in one SQLite statement,
  // merged into NIP-01 order and cut at the limit.
  Status query_ids(const Filter& filter, const QueryRequest& request,
                   const std::function<bool(const StoredEvent&)>& visit) {
    const std::uint32_t limit = storage::effective_limit(filter, request);
    if (limit == 0) return Status::ok();
    storage::CachedLookup found = storage::lookup_ids(*cache_, filter, request);
    std::vector<StoredEvent>& events = found.hits;
    if (!found.misses.empty()) {
      Filter rest = filter;
      rest.ids = std::move(found.misses);
      const std::size_t cached = events.size();
      auto lease = readers_.acquire();
      Status s = storage::sqlite_query(
          *lease, rest, request,
          [&](const StoredEvent& e) {
            events.push_back(e);
            return true;
          },
          cache_.get(), &log_);
      if (!s) return s;
      auto by_key = [](const StoredEvent& a, const StoredEvent& b) {
        return event_key(*a.event) < event_key(*b.event);
      };
      std::inplace_merge(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(cached),
                         events.end(), by_key);
    }
    std::optional<EventKey> last;
    std::uint32_t served = 0;
    for (const StoredEvent& e : events) {
      if (served == limit) break;
      // A filter a host built may list an id twice.
      const EventKey key = event_key(*e.event);
      if (last && *last == key) continue;
      last = key;
      ++served;
      if (!visit(e)) break;
    }
    return Status::ok();
  }

  // The search index's backlog, under writer_mutex_; none without the index.
  std::optional<storage::SearchBacklog> backlog_;
  // Where a read reports a stored row it skipped; logs nothing without SqliteOptions::logger.
  const Log log_;
  std::mutex writer_mutex_;
  std::unique_ptr<SqliteConnection> writer_;
  // Declared after the writer: it stops, and closes its connection, before the writer closes.
  std::unique_ptr<storage::SqliteCheckpointer> checkpointer_;
  // Null when disabled.
  std::unique_ptr<storage::EventCache> cache_;
  // Declared after the writer, so the readers close first and the writer, closing last,
  // checkpoints the WAL back into the database file.
  ReaderPool readers_;
};

}  // namespace

Result<std::shared_ptr<Storage>> new_sqlite_storage(const SqliteOptions& options) {
  auto writer = SqliteConnection::open(options.path, /*read_only=*/false);
  if (!writer) return std::move(writer).error();
  if (Status s = storage::configure_connection(**writer, options, /*writer=*/true); !s) return s;
  if (Status s = storage::ensure_schema(**writer, options.logger.get()); !s) return s;

  std::optional<storage::SearchBacklog> backlog;
  if (options.search_index) {
    auto read = storage::sqlite_read_backlog(**writer);
    if (!read) return std::move(read).error();
    backlog = std::move(read).value();
  }
  auto store = std::make_shared<SqliteStorage>(
      std::move(writer).value(), options.event_cache_entries, std::move(backlog), options.logger);
  auto checkpoints = SqliteConnection::open(options.path, /*read_only=*/false);
  if (!checkpoints) return std::move(checkpoints).error();
  if (Status s = storage::configure_connection(**checkpoints, options, /*writer=*/false); !s) {
    return s;
  }
  store->start_checkpointer(std::move(checkpoints).value(), options.path,
                            options.checkpoint_frames);
  const std::uint32_t readers = options.readers == 0 ? 1 : options.readers;
  for (std::uint32_t i = 0; i < readers; ++i) {
    auto reader = SqliteConnection::open(options.path, /*read_only=*/true);
    if (!reader) return std::move(reader).error();
    if (Status s = storage::configure_connection(**reader, options, /*writer=*/false); !s) {
      return s;
    }
    store->readers().add(std::move(reader).value());
  }
  return std::shared_ptr<Storage>(std::move(store));
}

}  // namespace relaycore
