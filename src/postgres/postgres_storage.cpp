// PostgreSQL storage: one writer connection behind a mutex and a pool of read connections
// leased one per call. Each connection reconnects by itself (with backoff) after a loss; calls
// made while the server is away fail with "error:" and the next call after the backoff tries
// again.
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "postgres/pg_connection.hpp"
#include "postgres/pg_read.hpp"
#include "postgres/pg_schema.hpp"
#include "postgres/pg_write.hpp"
#include "relaycore/postgres.hpp"
#include "storage/connection_pool.hpp"

namespace relaycore {
namespace {

using postgres::PgConnection;

class PostgresStorage final : public Storage {
 public:
  explicit PostgresStorage(PostgresOptions options) : options_(std::move(options)) {
    writer_ = std::make_unique<PgConnection>(options_);
    const std::uint32_t readers = options_.pool_size == 0 ? 1 : options_.pool_size;
    for (std::uint32_t i = 0; i < readers; ++i) {
      readers_.add(std::make_unique<PgConnection>(options_));
    }
  }

  // Connects the writer and brings the schema up to date; readers connect on first use.
  Status open() {
    std::lock_guard lock(writer_mutex_);
    if (Status s = writer_->ensure(); !s) {
      const std::string& why = writer_->connect_error();
      return why.empty() ? s : Status::error(std::string(s.detail()) + ": " + why);
    }
    return postgres::ensure_schema(*writer_);
  }

  Status write_batch(std::span<const EventPtr> events, std::vector<WriteResult>& results) override {
    std::lock_guard lock(writer_mutex_);
    return postgres::pg_write_batch(*writer_, events, results);
  }

  Status query(const Filter& filter, const QueryRequest& request,
               const std::function<bool(const StoredEvent&)>& visit) override {
    auto lease = readers_.acquire();
    return postgres::pg_query(*lease, filter, request, visit, &log_);
  }

  Status scan_keys(const Filter& filter, const QueryRequest& request,
                   const std::function<bool(const EventKey&)>& visit) override {
    if (filter.search) return Storage::scan_keys(filter, request, visit);
    auto lease = readers_.acquire();
    return postgres::pg_scan_keys(*lease, filter, request, visit);
  }

  Result<std::uint64_t> count(const std::vector<Filter>& filters,
                              const QueryRequest& request) override {
    auto lease = readers_.acquire();
    return postgres::pg_count(*lease, filters, request);
  }

  Result<bool> contains(const EventId& id) override {
    auto lease = readers_.acquire();
    return postgres::pg_contains(*lease, id);
  }

  Result<std::uint64_t> max_seq() override {
    auto lease = readers_.acquire();
    return postgres::pg_max_seq(*lease);
  }

  Status scan_since(std::uint64_t after_seq,
                    const std::function<bool(const StoredEvent&)>& visit) override {
    auto lease = readers_.acquire();
    return postgres::pg_scan_since(*lease, after_seq, visit, &log_);
  }

  Result<std::vector<RemovedEvent>> purge_expired(std::int64_t now) override {
    std::lock_guard lock(writer_mutex_);
    return postgres::pg_purge_expired(*writer_, now);
  }

  Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) override {
    std::lock_guard lock(writer_mutex_);
    return postgres::pg_erase(*writer_, ids);
  }

  Result<std::uint64_t> size_bytes() override {
    auto lease = readers_.acquire();
    return postgres::pg_size_bytes(*lease);
  }

 private:
  // The connections keep a reference to the options, so they are declared first.
  const PostgresOptions options_;
  // Where a read reports a stored row it skipped; logs nothing without PostgresOptions::logger.
  const Log log_ = options_.logger ? Log(options_.logger, LogLevel::kDebug) : Log();
  std::mutex writer_mutex_;
  std::unique_ptr<PgConnection> writer_;
  storage::ConnectionPool<PgConnection> readers_;
};

}  // namespace

Result<std::shared_ptr<Storage>> new_postgres_storage(PostgresOptions options) {
  auto store = std::make_shared<PostgresStorage>(std::move(options));
  if (Status s = store->open(); !s) return s;
  return std::shared_ptr<Storage>(std::move(store));
}

}  // namespace relaycore
