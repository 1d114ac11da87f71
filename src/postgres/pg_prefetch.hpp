// Fewer round trips per batch: everything the write rules will ask about a batch (its ids, the
// ids its deletions name, their replacement slots and tombstones) is read in four statements up
// front, after the batch's advisory locks are held, and the rules' questions are answered from
// that snapshot. The locks keep other writers off these rows until the commit, and the
// snapshot follows this transaction's own writes, so the answers match what SQL would say.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "postgres/pg_connection.hpp"
#include "relaycore/event.hpp"
#include "relaycore/storage_rules.hpp"
#include "storage/storage_util.hpp"

namespace relaycore::postgres {

// The ids and slots a batch touches: its events' own, and those its deletions name.
struct BatchKeys {
  std::vector<EventId> ids;
  std::vector<Address> addresses;
};

BatchKeys batch_keys(std::span<const EventPtr> events);

// Answers from the prefetched rows, and passes every write (and any question about a key it did
// not prefetch) to `inner`, keeping its snapshot in step with the writes.
class PrefetchedTarget final : public WriteTarget {
 public:
  explicit PrefetchedTarget(WriteTarget& inner) : inner_(inner) {}

  // Reads the rows for `keys`; call inside the transaction, after taking the locks.
  Status prefetch(PgConnection& conn, const BatchKeys& keys);

  Result<std::optional<StoredRef>> find(const EventId& id) override;
  Result<bool> id_deleted(const EventId& id, const Pubkey& author) override;
  Result<std::optional<std::int64_t>> address_deleted_until(const Address& address) override;
  Status versions(const Address& address, std::vector<StoredRef>& out) override;
  Status remove(const EventId& id) override;
  Result<std::uint64_t> insert(const EventPtr& event) override;
  Status add_id_tombstone(const EventId& id, const Pubkey& author) override;
  Status add_address_tombstone(const Address& address, std::int64_t until) override;

 private:
  Status prefetch_ids(PgConnection& conn, const BatchKeys& keys);
  Status prefetch_addresses(PgConnection& conn, const BatchKeys& keys);

  WriteTarget& inner_;
  // Known ids: the stored event, or nothing when the id is not stored.
  std::map<EventId, std::optional<StoredRef>> events_;
  // Ids whose tombstones are known, and those tombstones (id, author).
  std::set<EventId> tombstoned_known_;
  std::set<std::pair<EventId, Pubkey>> tombstones_;
  // Known slots: their stored versions and their deletion bound.
  std::map<Address, std::vector<StoredRef>> versions_;
  std::map<Address, std::optional<std::int64_t>> address_tombstones_;
};

}  // namespace relaycore::postgres
