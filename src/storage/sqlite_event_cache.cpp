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

// A shard's table size: a power of two at least twice its capacity, so probe chains stay short.
std::size_t table_size(std::size_t shard_capacity) {
  std::size_t n = 2;
  while (n < 2 * shard_capacity) n *= 2;
  return n;
}

EventCache::EventCache(std::size_t capacity)
    : shard_capacity_(std::max<std::size_t>(1, (capacity + kShards - 1) / kShards)),
      mask_(table_size(shard_capacity_) - 1),
      shards_(std::make_unique<Shard[]>(kShards)) {
  for (std::size_t i = 0; i < kShards; ++i) shards_[i].table.resize(mask_ + 1);
}

EventCache::Shard& EventCache::shard(const EventId& id) noexcept {
  return shards_[id[0] & (kShards - 1)];
}

std::size_t EventCache::home(const EventId& id) const noexcept {
  // An id is already a SHA-256: any 8 of its bytes are a good hash. Bytes 8-15, so the slot is
  // not correlated with the shard, picked from byte 0.
  std::size_t h;
  std::memcpy(&h, id.data() + 8, sizeof(h));
  return h & mask_;
}

std::size_t EventCache::slot_of(const Shard& s, const EventId& id) const noexcept {
  for (std::size_t i = home(id);; i = (i + 1) & mask_) {
    const Slot& slot = s.table[i];
    if (!slot.occupied) return s.table.size();
    if (slot.id == id) return i;
  }
}

std::optional<StoredEvent> EventCache::find(const EventId& id) {
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  const std::size_t i = slot_of(s, id);
  if (i == s.table.size()) return std::nullopt;
  s.table[i].used = true;
  return s.table[i].stored;
}

void EventCache::prefetch(const EventId& id) const noexcept {
  const Shard& s = shards_[id[0] & (kShards - 1)];
  __builtin_prefetch(s.table.data() + home(id));
}

void EventCache::remove_locked(Shard& s, std::size_t hole) {
  s.table[hole] = Slot();
  --s.size;
  // Moves back each later entry of the probe chain whose home is not between the hole and it,
  // so every entry stays reachable from its home without a gap.
  for (std::size_t j = (hole + 1) & mask_; s.table[j].occupied; j = (j + 1) & mask_) {
    const std::size_t k = home(s.table[j].id);
    const bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
    if (stays) continue;
    s.table[hole] = std::move(s.table[j]);
    s.table[j] = Slot();
    hole = j;
  }
}

void EventCache::evict_locked(Shard& s) {
  // Ends within one turn and a slot: the hand clears every flag it passes.
  for (;; s.hand = (s.hand + 1) & mask_) {
    Slot& slot = s.table[s.hand];
    if (!slot.occupied) continue;
    if (!slot.used) {
      remove_locked(s, s.hand);
      return;
    }
    slot.used = false;
  }
}

void EventCache::put_locked(Shard& s, const StoredEvent& stored) {
  const EventId& id = stored.event->id();
  if (const std::size_t i = slot_of(s, id); i != s.table.size()) {
    s.table[i].used = true;
    return;
  }
  if (s.size >= shard_capacity_) evict_locked(s);
  std::size_t i = home(id);
  while (s.table[i].occupied) i = (i + 1) & mask_;
  s.table[i] = Slot{id, stored, true, false};
  ++s.size;
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
    if (const std::size_t i = slot_of(s, id); i != s.table.size()) remove_locked(s, i);
  }
}

std::size_t EventCache::size() {
  std::size_t n = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].size;
  }
  return n;
}

CachedLookup lookup_ids(EventCache& cache, const Filter& filter, const QueryRequest& request) {
  // The ids are random, so each lookup misses the CPU caches twice: its slot, then its event.
  // Both are fetched for the whole list before any is read.
  const std::vector<EventId>& ids = *filter.ids;
  for (const EventId& id : ids) cache.prefetch(id);
  std::vector<StoredEvent> found;
  found.reserve(ids.size());
  CachedLookup out;
  for (const EventId& id : ids) {
    if (std::optional<StoredEvent> hit = cache.find(id)) {
      const auto* bytes = reinterpret_cast<const char*>(hit->event.get());
      for (std::size_t at = 0; at < sizeof(Event); at += 64) __builtin_prefetch(bytes + at);
      found.push_back(std::move(*hit));
    } else {
      out.misses.push_back(id);
    }
  }
  out.hits.reserve(found.size());
  for (StoredEvent& stored : found) {
    const Event& e = *stored.event;
    if (stored.seq > request.max_seq || is_expired(e, request.now) || !filter.matches(e)) continue;
    if (request.after && !(*request.after < event_key(e))) continue;
    out.hits.push_back(std::move(stored));
  }
  std::sort(out.hits.begin(), out.hits.end(), [](const StoredEvent& a, const StoredEvent& b) {
    return event_key(*a.event) < event_key(*b.event);
  });
  return out;
}

}  // namespace relaycore::storage
