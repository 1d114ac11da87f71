// RecentIds: the ids of recently committed events, for the verify stage's duplicate check.
// Only an id found here is looked up in storage before its signature check, so a resend of an
// event the relay just stored is still answered without a Schnorr verification, while a new
// event costs no storage read on the verify threads (a SQLite read starts a read transaction
// and, after each commit, re-reads its pages: 5-15 us per event on the benchmark machine).
// Older duplicates are verified and then found by the writer's own lookup inside its
// transaction, which answers them the same way ("duplicate: ...").
#pragma once

#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "relaycore/event.hpp"

namespace relaycore::pipeline {

class RecentIds {
 public:
  // Direct-mapped: a newer id may evict an older one from its slot, which only sends that
  // older id's resend through verification.
  static constexpr std::size_t kSlots = std::size_t{1} << 16;

  bool contains(const EventId& id) const {
    const std::size_t slot = slot_of(id);
    std::lock_guard lock(mu_);
    return used_[slot] && ids_[slot] == id;
  }

  void add(const EventId& id) {
    const std::size_t slot = slot_of(id);
    std::lock_guard lock(mu_);
    ids_[slot] = id;
    used_[slot] = true;
  }

 private:
  static std::size_t slot_of(const EventId& id) noexcept {
    // Ids are SHA-256 hashes: any 8 bytes are uniformly distributed.
    std::uint64_t h;
    std::memcpy(&h, id.data(), sizeof(h));
    return static_cast<std::size_t>(h % kSlots);
  }

  mutable std::mutex mu_;
  std::vector<EventId> ids_ = std::vector<EventId>(kSlots);
  std::vector<bool> used_ = std::vector<bool>(kSlots);
};

}  // namespace relaycore::pipeline
