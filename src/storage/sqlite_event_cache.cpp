#include "storage/sqlite_event_cache.hpp"

#include <algorithm>
#include <cstring>

#include "storage/storage_util.hpp"

namespace relaycore::storage {
namespace {

// A power of two, so a shard is picked with a mask. More shards than reader threads keeps
// readers from meeting on one lock.
constexpr std::size_t kShards = 16;

}  // namespace

std::size_t EventCache::IdHash::operator()(const EventId& id) const noexcept {
  // An id is already a SHA-256: any 8 of its bytes are a good hash. Bytes 8-15, so the shard,
  // picked from byte 0, is not correlated with the bucket.
  std::size_t h;
  std::memcpy(&h, id.data() + 8, sizeof(h));
  return h;
}

EventCache::EventCache(std::size_t capacity)
    : shard_capacity_(std::max<std::size_t>(1, (capacity + kShards - 1) / kShards)),
      shards_(std::make_unique<Shard[]>(kShards)) {
  for (std::size_t i = 0; i < kShards; ++i) {
    // Reserved whole, so the index never rehashes under a reader.
    shards_[i].index.reserve(shard_capacity_);
    shards_[i].clock.resize(shard_capacity_);
  }
}

EventCache::Shard& EventCache::shard(const EventId& id) noexcept {
  return shards_[id[0] & (kShards - 1)];
}

std::optional<StoredEvent> EventCache::find(const EventId& id) {
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it == s.index.end()) return std::nullopt;
  it->second.used = true;
  return it->second.stored;
}

void EventCache::remove_locked(Shard& s, std::unordered_map<EventId, Entry, IdHash>::iterator it) {
  s.clock[it->second.slot].reset();
  s.index.erase(it);
}

void EventCache::put_locked(Shard& s, const StoredEvent& stored) {
  const EventId& id = stored.event->id();
  if (auto it = s.index.find(id); it != s.index.end()) {
    it->second.used = true;
    return;
  }
  // Advance to a free slot or an entry not used since the hand last passed, which goes. At most
  // one turn: the hand clears every flag it passes.
  while (s.clock[s.hand]) {
    auto it = s.index.find(*s.clock[s.hand]);
    if (!it->second.used) {
      remove_locked(s, it);
      break;
    }
    it->second.used = false;
    s.hand = static_cast<std::uint32_t>((s.hand + 1) % s.clock.size());
  }
  s.clock[s.hand] = id;
  s.index.emplace(id, Entry{stored, s.hand, false});
  s.hand = static_cast<std::uint32_t>((s.hand + 1) % s.clock.size());
}

void EventCache::insert_read(const StoredEvent& stored, std::uint64_t generation) {
  Shard& s = shard(stored.event->id());
  std::lock_guard lock(s.mu);
  if (generation_.load(std::memory_order_acquire) != generation) return;
  put_locked(s, stored);
}

void EventCache::insert_stored(const StoredEvent& stored) {
  Shard& s = shard(stored.event->id());
  std::lock_guard lock(s.mu);
  put_locked(s, stored);
}

void EventCache::erase(std::span<const EventId> ids) {
  if (ids.empty()) return;
  begin_removal();
  for (const EventId& id : ids) {
    Shard& s = shard(id);
    std::lock_guard lock(s.mu);
    if (auto it = s.index.find(id); it != s.index.end()) remove_locked(s, it);
  }
}

void EventCache::erase_expired(std::int64_t now) {
  begin_removal();
  for (std::size_t i = 0; i < kShards; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    for (auto it = s.index.begin(); it != s.index.end();) {
      auto next = std::next(it);
      if (is_expired(*it->second.stored.event, now)) remove_locked(s, it);
      it = next;
    }
  }
}

std::size_t EventCache::size() {
  std::size_t n = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].index.size();
  }
  return n;
}

CachedLookup lookup_ids(EventCache& cache, const Filter& filter, const QueryRequest& request) {
  CachedLookup out;
  for (const EventId& id : *filter.ids) {
    std::optional<StoredEvent> found = cache.find(id);
    if (!found) {
      out.misses.push_back(id);
      continue;
    }
    const Event& e = *found->event;
    if (found->seq > request.max_seq || is_expired(e, request.now) || !filter.matches(e)) continue;
    if (request.after && !(*request.after < event_key(e))) continue;
    out.hits.push_back(std::move(*found));
  }
  std::sort(out.hits.begin(), out.hits.end(), [](const StoredEvent& a, const StoredEvent& b) {
    return event_key(*a.event) < event_key(*b.event);
  });
  return out;
}

}  // namespace relaycore::storage
