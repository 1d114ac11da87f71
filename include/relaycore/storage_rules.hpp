// The NIP-01 replacement and NIP-09 deletion rules, for whoever writes a Storage. They are
// written once over a small set of primitive operations (WriteTarget) that each storage
// provides; the built-in storages run this same code, so a custom storage that implements the
// primitives decides "newest wins" and "deleted" exactly as they do.
//
// A storage calls apply_event() for each event of a write_batch, in order, and erase_events()
// for Storage::erase, inside its own transaction; the rules call back into the WriteTarget.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"

namespace relaycore {

// The kind of a NIP-09 deletion request.
inline constexpr std::uint16_t kDeletionKind = 5;

// A replaceable or addressable slot: one stored version per (kind, pubkey, d). Replaceable kinds
// always use an empty d, so one key shape serves both. Ordered, so it can key a std::map.
struct Address {
  std::uint16_t kind = 0;
  Pubkey pubkey{};
  std::string d;

  friend auto operator<=>(const Address&, const Address&) = default;
  friend bool operator==(const Address&, const Address&) = default;
};

// The slot an event occupies, or nothing for regular (and ephemeral) kinds. A storage files
// each inserted event under it, so that WriteTarget::versions() can find it.
RELAYCORE_API std::optional<Address> address_of(const Event& event);

// What the rules need to know about one stored event.
struct StoredRef {
  EventId id{};
  Pubkey pubkey{};
  std::int64_t created_at = 0;
  std::uint16_t kind = 0;
  std::uint64_t seq = 0;
};

// The primitives, called inside the storage's write transaction. A non-ok Status means the
// storage itself failed; the caller then abandons (rolls back) the whole batch.
// [Threading] Called only from the thread running write_batch() or erase().
class RELAYCORE_API WriteTarget {
 public:
  virtual ~WriteTarget() = default;

  // The stored event with this id, if any.
  virtual Result<std::optional<StoredRef>> find(const EventId& id) = 0;
  // True when `author` asked for `id` to be deleted (a tombstone from a kind 5 e tag).
  virtual Result<bool> id_deleted(const EventId& id, const Pubkey& author) = 0;
  // The newest created_at up to which the address's author deleted it (kind 5 a tag).
  virtual Result<std::optional<std::int64_t>> address_deleted_until(const Address& address) = 0;
  // Every stored version in the address's slot (normally at most one).
  virtual Status versions(const Address& address, std::vector<StoredRef>& out) = 0;
  // Removes one stored event, with everything indexed for it.
  virtual Status remove(const EventId& id) = 0;
  // Stores the event and returns the sequence it was given: higher than any given before, even
  // to events removed since.
  virtual Result<std::uint64_t> insert(const EventPtr& event) = 0;
  // Records that `author` deleted `id`, so that a later copy from the author is refused. Kept
  // when the event is removed: that is what makes the deletion stick.
  virtual Status add_id_tombstone(const EventId& id, const Pubkey& author) = 0;
  // Records that the address is deleted up to `until` (keeping the newest such bound).
  virtual Status add_address_tombstone(const Address& address, std::int64_t until) = 0;
};

// Applies one event of a batch and fills `result`: duplicates, NIP-09 refusals, replacement
// (newest wins, then lowest id) and, for a kind 5, the deletions it asks for. Returns non-ok
// only when the target failed; rejections (an older version, an ephemeral event) are outcomes.
RELAYCORE_API Status apply_event(WriteTarget& target, const EventPtr& event, WriteResult& result);

// Storage::erase over the primitives: removes each stored event of `ids` (ids not stored are
// skipped) and appends it to `removed` with RemovalReason::kErased, in the order given. Leaves
// no tombstone, so the author may publish the event again.
RELAYCORE_API Status erase_events(WriteTarget& target, std::span<const EventId> ids,
                                  std::vector<RemovedEvent>& removed);

}  // namespace relaycore
