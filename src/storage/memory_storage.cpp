// In-memory storage: ordered maps under one shared_mutex (one writer, many readers). Queries
// scan the time-ordered index, which is plenty for tests, embedded use and benchmarks of the
// rest of the pipeline. Visitors run after the lock is released, in chunks, so a host callback
// never runs under a relaycore lock.
#include <algorithm>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "protocol/search_text.hpp"
#include "relaycore/storage.hpp"
#include "relaycore/storage_rules.hpp"
#include "storage/storage_keys.hpp"
#include "storage/storage_util.hpp"

namespace relaycore {
namespace {

// The NIP-01 result order: created_at descending, then id ascending.
using TimeKey = EventKey;

// How many events a scan collects under the lock before handing them to the visitor.
constexpr std::size_t kScanChunk = 1024;

class MemoryStorage final : public Storage, private WriteTarget {
 public:
  Status write_batch(std::span<const EventPtr> events, std::vector<WriteResult>& results) override;
  Status query(const Filter& filter, const QueryRequest& request,
               const std::function<bool(const StoredEvent&)>& visit) override;
  Status scan_keys(const Filter& filter, const QueryRequest& request,
                   const std::function<bool(const EventKey&)>& visit) override;
  Result<std::uint64_t> count(const std::vector<Filter>& filters,
                              const QueryRequest& request) override;
  Result<bool> contains(const EventId& id) override;
  Result<std::uint64_t> max_seq() override;
  Status scan_since(std::uint64_t after_seq,
                    const std::function<bool(const StoredEvent&)>& visit) override;
  Result<std::vector<RemovedEvent>> purge_expired(std::int64_t now) override;
  Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) override;
  Result<std::uint64_t> size_bytes() override;

 private:
  // WriteTarget, called with mutex_ held exclusively.
  Result<std::optional<StoredRef>> find(const EventId& id) override;
  Result<bool> id_deleted(const EventId& id, const Pubkey& author) override;
  Result<std::optional<std::int64_t>> address_deleted_until(const Address& address) override;
  Status versions(const Address& address, std::vector<StoredRef>& out) override;
  Status remove(const EventId& id) override;
  Result<std::uint64_t> insert(const EventPtr& event) override;
  Status add_id_tombstone(const EventId& id, const Pubkey& author) override;
  Status add_address_tombstone(const Address& address, std::int64_t until) override;

  // Calls `take` with the visible matches of a filter without ids, newest first, from the
  // request's position on, until `limit` have been taken. Called with mutex_ held.
  template <typename Take>
  void scan_by_time(const Filter& filter, const QueryRequest& request, std::size_t limit,
                    Take take) const {
    auto it = request.after ? by_time_.upper_bound(*request.after) : by_time_.begin();
    for (std::size_t n = 0; it != by_time_.end() && n < limit; ++it) {
      if (visible(it->second, filter, request)) {
        take(it->second);
        ++n;
      }
    }
  }

  // True when a stored event is visible to a query with these parameters.
  static bool visible(const StoredEvent& stored, const Filter& filter, const QueryRequest& request);

  // glibc's rwlock prefers readers, so a steady stream of queries could starve the writer.
  // Writers hold gate_ while they wait for and hold the exclusive lock; readers pass through
  // gate_ first, so they queue behind a waiting writer.
  std::shared_lock<std::shared_mutex> read_lock() {
    std::lock_guard gate(gate_);
    return std::shared_lock(mutex_);
  }
  struct WriteLock {
    explicit WriteLock(MemoryStorage& s) : gate(s.gate_), lock(s.mutex_) {}
    std::lock_guard<std::mutex> gate;
    std::unique_lock<std::shared_mutex> lock;
  };

  std::mutex gate_;
  std::shared_mutex mutex_;
  std::map<TimeKey, StoredEvent> by_time_;
  std::map<EventId, std::int64_t> created_by_id_;  // finds an event's TimeKey
  std::map<std::uint64_t, EventPtr> by_seq_;
  std::map<Address, EventId> addresses_;
  std::set<std::pair<EventId, Pubkey>> deleted_ids_;
  std::map<Address, std::int64_t> deleted_addresses_;
  // The last sequence handed out; never reused, even when its event is removed.
  std::uint64_t last_seq_ = 0;
  // The bytes of the stored events' JSON, for size_bytes().
  std::uint64_t bytes_ = 0;
};

bool MemoryStorage::visible(const StoredEvent& stored, const Filter& filter,
                            const QueryRequest& request) {
  const Event& e = *stored.event;
  if (stored.seq > request.max_seq || storage::is_expired(e, request.now)) return false;
  return filter.matches(e);
}

Status MemoryStorage::write_batch(std::span<const EventPtr> events,
                                  std::vector<WriteResult>& results) {
  results.clear();
  results.resize(events.size());
  WriteLock lock(*this);
  // Nothing here fails but allocation. If it does, the batch is reported failed, but events
  // applied before the failure stay: the memory store keeps no undo log for a process that is
  // out of memory anyway.
  try {
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (Status s = apply_event(*this, events[i], results[i]); !s) return s;
    }
  } catch (const std::bad_alloc&) {
    Status failed = Status::error("storage: out of memory");
    for (WriteResult& r : results) storage::set_outcome(r, WriteOutcome::kRejected, failed);
    return failed;
  }
  return Status::ok();
}

Status MemoryStorage::query(const Filter& filter, const QueryRequest& request,
                            const std::function<bool(const StoredEvent&)>& visit) {
  const std::size_t limit = storage::effective_limit(filter, request);
  std::vector<StoredEvent> found;
  {
    auto lock = read_lock();
    if (filter.search) {
      // Ranked: every match scored by term frequency, best first, then in NIP-01 order.
      const std::vector<std::string> words = search::query_words(*filter.search);
      std::vector<std::pair<std::size_t, const StoredEvent*>> hits;
      auto it = request.after ? by_time_.upper_bound(*request.after) : by_time_.begin();
      for (; it != by_time_.end() && !words.empty(); ++it) {
        if (!visible(it->second, filter, request)) continue;
        hits.emplace_back(search::term_frequency(words, it->second.event->content()), &it->second);
      }
      // by_time_ is in NIP-01 order already; a stable sort keeps it among equal scores.
      std::stable_sort(hits.begin(), hits.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      for (std::size_t i = 0; i < hits.size() && i < limit; ++i) found.push_back(*hits[i].second);
    } else if (filter.ids) {
      // A lookup per id beats scanning everything; then sort into result order.
      std::vector<std::pair<TimeKey, const StoredEvent*>> hits;
      for (const EventId& id : *filter.ids) {
        auto it = created_by_id_.find(id);
        if (it == created_by_id_.end()) continue;
        TimeKey key{it->second, id};
        if (request.after && !(*request.after < key)) continue;
        const StoredEvent& stored = by_time_.at(key);
        if (visible(stored, filter, request)) hits.emplace_back(key, &stored);
      }
      std::sort(hits.begin(), hits.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (std::size_t i = 0; i < hits.size() && i < limit; ++i) found.push_back(*hits[i].second);
    } else {
      scan_by_time(filter, request, limit,
                   [&](const StoredEvent& stored) { found.push_back(stored); });
    }
  }
  for (const StoredEvent& stored : found) {
    if (!visit(stored)) break;
  }
  return Status::ok();
}

Status MemoryStorage::scan_keys(const Filter& filter, const QueryRequest& request,
                                const std::function<bool(const EventKey&)>& visit) {
  // Ids are looked up one by one in query(); that path serves them here too.
  if (filter.ids) return Storage::scan_keys(filter, request, visit);
  std::vector<EventKey> keys;
  {
    auto lock = read_lock();
    scan_by_time(filter, request, storage::effective_limit(filter, request),
                 [&](const StoredEvent& stored) { keys.push_back(event_key(*stored.event)); });
  }
  storage::newest_first_to_ascending(keys);
  storage::visit_keys(keys, visit);
  return Status::ok();
}

Result<std::uint64_t> MemoryStorage::count(const std::vector<Filter>& filters,
                                           const QueryRequest& request) {
  auto lock = read_lock();
  std::uint64_t n = 0;
  for (const auto& [key, stored] : by_time_) {
    for (const Filter& f : filters) {
      if (visible(stored, f, request)) {
        ++n;
        break;
      }
    }
  }
  return n;
}

Result<bool> MemoryStorage::contains(const EventId& id) {
  auto lock = read_lock();
  return created_by_id_.contains(id);
}

Result<std::uint64_t> MemoryStorage::max_seq() {
  auto lock = read_lock();
  return last_seq_;
}

Status MemoryStorage::scan_since(std::uint64_t after_seq,
                                 const std::function<bool(const StoredEvent&)>& visit) {
  std::vector<StoredEvent> chunk;
  for (;;) {
    chunk.clear();
    {
      auto lock = read_lock();
      for (auto it = by_seq_.upper_bound(after_seq);
           it != by_seq_.end() && chunk.size() < kScanChunk; ++it) {
        chunk.push_back(StoredEvent{it->second, it->first});
      }
    }
    if (chunk.empty()) return Status::ok();
    for (const StoredEvent& stored : chunk) {
      if (!visit(stored)) return Status::ok();
    }
    after_seq = chunk.back().seq;
  }
}

Result<std::vector<RemovedEvent>> MemoryStorage::purge_expired(std::int64_t now) {
  WriteLock lock(*this);
  std::vector<RemovedEvent> expired;
  for (const auto& [seq, event] : by_seq_) {
    if (storage::is_expired(*event, now)) {
      expired.push_back(
          {event->id(), event->kind(), seq, RemovalReason::kExpired, event->pubkey()});
    }
  }
  for (const RemovedEvent& gone : expired) {
    if (Status s = remove(gone.id); !s) return s;
  }
  return expired;
}

Result<std::vector<RemovedEvent>> MemoryStorage::erase(std::span<const EventId> ids) {
  WriteLock lock(*this);
  std::vector<RemovedEvent> erased;
  if (Status s = erase_events(*this, ids, erased); !s) return s;
  return erased;
}

Result<std::uint64_t> MemoryStorage::size_bytes() {
  auto lock = read_lock();
  return bytes_;
}

Result<std::optional<StoredRef>> MemoryStorage::find(const EventId& id) {
  auto it = created_by_id_.find(id);
  if (it == created_by_id_.end()) return std::optional<StoredRef>();
  const StoredEvent& stored = by_time_.at(TimeKey{it->second, id});
  const Event& e = *stored.event;
  return std::optional<StoredRef>(
      StoredRef{e.id(), e.pubkey(), e.created_at(), e.kind(), stored.seq});
}

Result<bool> MemoryStorage::id_deleted(const EventId& id, const Pubkey& author) {
  return deleted_ids_.contains({id, author});
}

Result<std::optional<std::int64_t>> MemoryStorage::address_deleted_until(const Address& address) {
  auto it = deleted_addresses_.find(address);
  if (it == deleted_addresses_.end()) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(it->second);
}

Status MemoryStorage::versions(const Address& address, std::vector<StoredRef>& out) {
  out.clear();
  auto it = addresses_.find(address);
  if (it == addresses_.end()) return Status::ok();
  auto found = find(it->second);
  if (found.is_ok() && found->has_value()) out.push_back(**found);
  return Status::ok();
}

Status MemoryStorage::remove(const EventId& id) {
  auto it = created_by_id_.find(id);
  if (it == created_by_id_.end()) return Status::ok();
  auto node = by_time_.find(TimeKey{it->second, id});
  const StoredEvent stored = node->second;
  if (auto address = address_of(*stored.event)) {
    auto slot = addresses_.find(*address);
    if (slot != addresses_.end() && slot->second == id) addresses_.erase(slot);
  }
  by_seq_.erase(stored.seq);
  by_time_.erase(node);
  created_by_id_.erase(it);
  bytes_ -= stored.event->json().size();
  return Status::ok();
}

Result<std::uint64_t> MemoryStorage::insert(const EventPtr& event) {
  const std::uint64_t seq = ++last_seq_;
  by_time_.emplace(TimeKey{event->created_at(), event->id()}, StoredEvent{event, seq});
  created_by_id_.emplace(event->id(), event->created_at());
  by_seq_.emplace(seq, event);
  if (auto address = address_of(*event)) addresses_[*address] = event->id();
  bytes_ += event->json().size();
  return seq;
}

Status MemoryStorage::add_id_tombstone(const EventId& id, const Pubkey& author) {
  deleted_ids_.emplace(id, author);
  return Status::ok();
}

Status MemoryStorage::add_address_tombstone(const Address& address, std::int64_t until) {
  auto [it, inserted] = deleted_addresses_.emplace(address, until);
  if (!inserted) it->second = std::max(it->second, until);
  return Status::ok();
}

}  // namespace

std::shared_ptr<Storage> new_memory_storage() { return std::make_shared<MemoryStorage>(); }

}  // namespace relaycore
