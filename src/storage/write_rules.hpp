// The NIP-01 replacement and NIP-09 deletion rules, written once over a small set of primitive
// operations that each storage provides. Both built-in storages run the same apply_event, so
// they cannot drift apart on what "newest wins" or "deleted" means.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"
#include "storage/storage_util.hpp"

namespace relaycore::storage {

// What the rules need to know about one stored event.
struct StoredRef {
  EventId id{};
  Pubkey pubkey{};
  std::int64_t created_at = 0;
  std::uint16_t kind = 0;
  std::uint64_t seq = 0;
};

// The primitives, called inside the storage's write transaction. A non-ok Status means the
// storage itself failed; the caller then abandons the whole batch.
class WriteTarget {
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
  // Stores the event and returns the sequence it was given.
  virtual Result<std::uint64_t> insert(const EventPtr& event) = 0;
  // Records that `author` deleted `id`, so that a later copy from the author is refused.
  virtual Status add_id_tombstone(const EventId& id, const Pubkey& author) = 0;
  // Records that the address is deleted up to `until` (keeping the newest such bound).
  virtual Status add_address_tombstone(const Address& address, std::int64_t until) = 0;
};

// Applies one event of a batch and fills `result`. Returns non-ok only when the target failed;
// rejections (older version, ephemeral) are outcomes, not failures.
Status apply_event(WriteTarget& target, const EventPtr& event, WriteResult& result);

}  // namespace relaycore::storage
