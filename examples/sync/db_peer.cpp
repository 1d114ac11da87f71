// The local side as a relaycore SQLite database. Reads go to the storage; writes go through an
// embedded Relay on the same storage, so they pass the relay's verification and write rules as a
// client's EVENT would.
#include <condition_variable>
#include <mutex>

#include "../common/db_lock.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"
#include "sync.hpp"

namespace relaycore::sync {
namespace {

class DbPeer final : public Peer {
 public:
  DbPeer(std::string path, examples::DbLock lock, std::shared_ptr<Storage> storage,
         std::unique_ptr<Relay> relay)
      : path_(std::move(path)),
        lock_(std::move(lock)),
        storage_(std::move(storage)),
        relay_(std::move(relay)) {}

  const std::string& name() const override { return path_; }
  // What the relay stored was verified when it came in.
  bool trusted() const override { return true; }

  // Stored events need no paging limit: a one-second window is read whole.
  std::uint32_t max_limit() const override { return UINT32_MAX; }

  Status query(const Filter& filter, std::vector<EventPtr>& out, std::uint64_t&) override {
    QueryRequest request;
    request.now = unix_now();
    request.max_limit = filter.limit.value_or(UINT32_MAX);
    return storage_->query(filter, request, [&](const StoredEvent& e) {
      out.push_back(e.event);
      return true;
    });
  }

  Status scan_keys(const Filter& filter, std::vector<NegentropyItem>& out) override {
    QueryRequest request;
    request.now = unix_now();
    request.max_limit = filter.limit.value_or(UINT32_MAX);
    return storage_->scan_keys(filter, request, [&](const EventKey& key) {
      out.push_back({static_cast<std::uint64_t>(key.created_at), key.id});
      return !stop_requested();
    });
  }

  Result<std::uint64_t> count(const Filter& filter) override {
    QueryRequest request;
    request.now = unix_now();
    return storage_->count({filter}, request);
  }

  Status store(const std::vector<EventPtr>& events, Tally& tally) override {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left = events.size();
    for (const EventPtr& e : events) {
      relay_->submit_async(e, [&, id = std::string(e->id_hex())](const OkResult& ok) {
        std::lock_guard lock(mu);
        tally.count_answer(id, ok.accepted, ok.message);
        if (--left == 0) cv.notify_all();
      });
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return left == 0; });
    return Status::ok();
  }

  Status close() override {
    if (!relay_) return Status::ok();
    Status s = relay_->shutdown();
    relay_.reset();
    return s;
  }

 private:
  const std::string path_;
  examples::DbLock lock_;  // held while the peer is open
  std::shared_ptr<Storage> storage_;
  std::unique_ptr<Relay> relay_;
};

}  // namespace

Result<std::unique_ptr<Peer>> open_db_peer(const std::string& path) {
  Result<examples::DbLock> lock = examples::DbLock::acquire(path);
  if (!lock) return Status::error("refused: " + std::string(lock.error().detail()));
  SqliteOptions sqlite;
  sqlite.path = path;
  Result<std::shared_ptr<Storage>> storage = new_sqlite_storage(sqlite);
  if (!storage)
    return Status::error("cannot open " + path + ": " + std::string(storage.error().detail()));
  Options options;
  options.storage = *storage;
  options.log_level = LogLevel::kWarn;
  Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(options));
  if (!relay)
    return Status::error("cannot open " + path + ": " + std::string(relay.error().detail()));
  return std::unique_ptr<Peer>(std::make_unique<DbPeer>(
      path, std::move(lock).value(), std::move(storage).value(), std::move(relay).value()));
}

}  // namespace relaycore::sync
