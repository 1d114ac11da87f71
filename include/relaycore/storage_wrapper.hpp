// StorageWrapper: a Storage that forwards every call to another one. A host that wants to
// observe or change a few calls of a storage (count writes, inject failures in a test, filter
// what is stored) derives from it and overrides only those; the rest keep working, including
// methods a later relaycore release adds to Storage.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"

namespace relaycore {

// [Threading] As the wrapped storage: each call runs on the caller's thread, and an override
//   must be as thread-safe as the Storage contract asks of the method it replaces.
// [Ownership] Shares ownership of the wrapped storage.
class StorageWrapper : public Storage {
 public:
  explicit StorageWrapper(std::shared_ptr<Storage> target) : target_(std::move(target)) {}

  // The wrapped storage.
  Storage& target() const noexcept { return *target_; }

  Status write_batch(std::span<const EventPtr> events, std::vector<WriteResult>& results) override {
    return target_->write_batch(events, results);
  }
  Status query(const Filter& filter, const QueryRequest& request,
               const std::function<bool(const StoredEvent&)>& visit) override {
    return target_->query(filter, request, visit);
  }
  Status scan_keys(const Filter& filter, const QueryRequest& request,
                   const std::function<bool(const EventKey&)>& visit) override {
    return target_->scan_keys(filter, request, visit);
  }
  Result<std::uint64_t> count(const std::vector<Filter>& filters,
                              const QueryRequest& request) override {
    return target_->count(filters, request);
  }
  Result<bool> contains(const EventId& id) override { return target_->contains(id); }
  Result<std::uint64_t> max_seq() override { return target_->max_seq(); }
  Status scan_since(std::uint64_t after_seq,
                    const std::function<bool(const StoredEvent&)>& visit) override {
    return target_->scan_since(after_seq, visit);
  }
  Result<std::vector<RemovedEvent>> purge_expired(std::int64_t now) override {
    return target_->purge_expired(now);
  }
  Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) override {
    return target_->erase(ids);
  }
  Result<std::uint64_t> size_bytes() override { return target_->size_bytes(); }
  Result<bool> maintain() override { return target_->maintain(); }

 private:
  std::shared_ptr<Storage> target_;
};

}  // namespace relaycore
