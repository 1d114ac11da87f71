// SQLite storage: one writer connection behind a mutex, and a pool of read-only connections
// leased one per call. WAL mode lets the readers run while the writer commits; each read sees
// the last commit made before its statement started.
//
// A visitor runs while its call holds a reader lease, so it must not call back into the same
// storage (with every lease taken, it would wait for itself).
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "relaycore/sqlite.hpp"
#include "storage/connection_pool.hpp"
#include "storage/sqlite_connection.hpp"
#include "storage/sqlite_read.hpp"
#include "storage/sqlite_schema.hpp"
#include "storage/sqlite_write.hpp"

namespace relaycore {
namespace {

using storage::SqliteConnection;

// Reader connections, each used by one thread at a time.
using ReaderPool = storage::ConnectionPool<SqliteConnection>;

class SqliteStorage final : public Storage {
 public:
  explicit SqliteStorage(std::unique_ptr<SqliteConnection> writer) : writer_(std::move(writer)) {}

  ReaderPool& readers() noexcept { return readers_; }

  Status write_batch(std::span<const EventPtr> events, std::vector<WriteResult>& results) override {
    std::lock_guard lock(writer_mutex_);
    return storage::sqlite_write_batch(*writer_, events, results);
  }

  Status query(const Filter& filter, const QueryRequest& request,
               const std::function<bool(const StoredEvent&)>& visit) override {
    auto lease = readers_.acquire();
    return storage::sqlite_query(*lease, filter, request, visit);
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
    return storage::sqlite_scan_since(*lease, after_seq, visit);
  }

  Result<std::vector<RemovedEvent>> purge_expired(std::int64_t now) override {
    std::lock_guard lock(writer_mutex_);
    return storage::sqlite_purge_expired(*writer_, now);
  }

  Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) override {
    std::lock_guard lock(writer_mutex_);
    return storage::sqlite_erase(*writer_, ids);
  }

 private:
  std::mutex writer_mutex_;
  std::unique_ptr<SqliteConnection> writer_;
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

  auto store = std::make_shared<SqliteStorage>(std::move(writer).value());
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
