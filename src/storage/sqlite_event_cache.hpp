// EventCache: a bounded cache of stored events keyed by id, in front of the SQLite storage. A
// filter listing ids is answered from it for the ids it holds, and every row a reader reads
// reuses the cached event instead of parsing the stored JSON again, so a popular event is parsed
// once and then shared (EventPtr) by every frame that carries it.
//
// The writer fills it with the events it stores; readers with the rows they read. Each shard
// evicts by CLOCK (second chance): a hit only sets a flag on the entry it found, so the hot path
// touches no other entry, and the eviction hand spares entries hit since it last passed.
//
// Invalidation is exact. The writer removes the entry of every event a committed write removed
// (replaced, deleted, purged, erased), after the commit. A reader's row comes from a snapshot
// that may predate such a removal, so a reader inserts only when no removal began since it
// recorded generation() before its read: the writer advances the generation after the commit
// and before it erases, and a reader checks it under the same shard lock the erase takes. Either
// the reader's insert comes first and the erase removes it, or the reader sees the new
// generation and does not insert.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::storage {

class EventCache {
 public:
  // Holds at most about `capacity` events (rounded up to a multiple of the shard count).
  explicit EventCache(std::size_t capacity);

  EventCache(const EventCache&) = delete;
  EventCache& operator=(const EventCache&) = delete;

  // The event stored under `id`, if cached; marks it used.
  std::optional<StoredEvent> find(const EventId& id);

  // Starts loading the slot where find(id) begins into the CPU cache, so that a batch of
  // lookups waits for memory once rather than once per id. Takes no lock: the tables never
  // move, and a prefetch reads nothing.
  void prefetch(const EventId& id) const noexcept;

  // Readers: record this before reading from SQLite, and pass it to insert_read().
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  // Caches a row read from a snapshot taken after `generation` was recorded, unless a removal
  // has begun since.
  void insert_read(const StoredEvent& stored, std::uint64_t generation);

  // Writer, after a commit: caches an event it stored.
  void insert_stored(const StoredEvent& stored);
  // Writer, after a commit: forgets events that commit removed.
  void erase(std::span<const EventId> ids);

  // The number of events held; for tests.
  std::size_t size();

 private:
  // One slot of a shard's open-addressed table: the id, the event and the CLOCK flag together,
  // so a hit reads one cache line before the event itself.
  struct Slot {
    EventId id{};
    StoredEvent stored;
    bool occupied = false;
    // Found since the eviction hand last passed.
    bool used = false;
  };
  // A table of at least twice the shard's capacity, probed linearly; removal shifts the probe
  // chain back rather than leave tombstones. The CLOCK hand sweeps the table itself.
  struct Shard {
    std::mutex mu;
    std::vector<Slot> table;
    std::size_t size = 0;
    std::size_t hand = 0;
  };

  Shard& shard(const EventId& id) noexcept;
  std::size_t home(const EventId& id) const noexcept;
  // The slot holding `id`, or the table's size when it is not there.
  std::size_t slot_of(const Shard& shard, const EventId& id) const noexcept;
  // Inserts or marks used with the shard's lock held, evicting when the shard is full.
  void put_locked(Shard& shard, const StoredEvent& stored);
  void remove_locked(Shard& shard, std::size_t slot);
  // Removes the first entry the hand reaches that was not found since it last passed.
  void evict_locked(Shard& shard);
  // Makes every reader that recorded an older generation skip its insert.
  void begin_removal() noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }

  const std::size_t shard_capacity_;
  // The table size minus one (a power of two minus one).
  const std::size_t mask_;
  std::atomic<std::uint64_t> generation_{0};
  std::unique_ptr<Shard[]> shards_;
};

// A filter's cached matches and the ids to read from SQLite.
struct CachedLookup {
  // Cached events matching the filter and visible to the request, in NIP-01 order.
  std::vector<StoredEvent> hits;
  // The filter's ids not in the cache, in the filter's (sorted) order.
  std::vector<EventId> misses;
};

// Looks up each of filter.ids (the filter must have ids) in the cache, and keeps the events that
// match every condition of the filter and are visible to `request`: committed at or before
// max_seq, not expired at now, after request.after.
CachedLookup lookup_ids(EventCache& cache, const Filter& filter, const QueryRequest& request);

}  // namespace relaycore::storage
