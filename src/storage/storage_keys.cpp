#include "storage/storage_keys.hpp"

#include <algorithm>

namespace relaycore {

Status Storage::scan_keys(const Filter& filter, const QueryRequest& request,
                          const std::function<bool(const EventKey&)>& visit) {
  std::vector<EventKey> keys;
  Status s = query(filter, request, [&](const StoredEvent& e) {
    keys.push_back(event_key(*e.event));
    return true;
  });
  if (!s) return s;
  // query() promises the NIP-01 order, but a host's storage is checked rather than trusted.
  std::sort(keys.begin(), keys.end(), [](const EventKey& a, const EventKey& b) {
    if (a.created_at != b.created_at) return a.created_at < b.created_at;
    return a.id < b.id;
  });
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  storage::visit_keys(keys, visit);
  return Status::ok();
}

Result<std::uint64_t> Storage::size_bytes() {
  return Status::error("this storage does not report its size");
}

Result<bool> Storage::maintain() { return false; }

}  // namespace relaycore

namespace relaycore::storage {

void newest_first_to_ascending(std::vector<EventKey>& keys) {
  std::reverse(keys.begin(), keys.end());
  // Each run of one created_at now has its ids descending.
  auto run = keys.begin();
  while (run != keys.end()) {
    auto next = std::find_if(run, keys.end(),
                             [&](const EventKey& k) { return k.created_at != run->created_at; });
    std::reverse(run, next);
    run = next;
  }
}

void visit_keys(const std::vector<EventKey>& keys,
                const std::function<bool(const EventKey&)>& visit) {
  for (const EventKey& k : keys) {
    if (!visit(k)) return;
  }
}

}  // namespace relaycore::storage
