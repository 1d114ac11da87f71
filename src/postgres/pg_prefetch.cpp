#include "postgres/pg_prefetch.hpp"

#include <algorithm>
#include <string_view>

namespace relaycore::postgres {
namespace {

constexpr std::string_view kEvents =
    "SELECT id, pubkey, created_at, kind, seq FROM events WHERE id = ANY($1::bytea[])";
constexpr std::string_view kTombstones =
    "SELECT id, pubkey FROM deleted_ids WHERE id = ANY($1::bytea[])";
// k.i (from 1) says which of the batch's slots a row belongs to.
constexpr std::string_view kVersions =
    "SELECT e.id, e.created_at, e.seq, k.i FROM unnest($1::bytea[], $2::int8[], $3::bytea[]) "
    "WITH ORDINALITY AS k(pubkey, kind, d, i) JOIN events e ON e.pubkey = k.pubkey "
    "AND e.kind = k.kind AND e.d_tag = k.d AND e.d_tag IS NOT NULL";
constexpr std::string_view kAddressTombstones =
    "SELECT t.up_to, k.i FROM unnest($1::bytea[], $2::int8[], $3::bytea[]) "
    "WITH ORDINALITY AS k(pubkey, kind, d, i) JOIN deleted_addresses t ON t.pubkey = k.pubkey "
    "AND t.kind = k.kind AND t.d = k.d";

std::string_view bytes_of(const Bytes32& b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

Status malformed() { return Status::error("storage: PostgreSQL returned a malformed row"); }

template <typename T>
void add_unique(std::vector<T>& out, T value) {
  if (std::find(out.begin(), out.end(), value) == out.end()) out.push_back(std::move(value));
}

}  // namespace

BatchKeys batch_keys(std::span<const EventPtr> events) {
  BatchKeys keys;
  for (const EventPtr& event : events) {
    add_unique(keys.ids, event->id());
    if (auto address = address_of(*event)) add_unique(keys.addresses, *address);
    if (event->kind() != kDeletionKind) continue;
    for (const Tag& tag : event->tags()) {
      if (tag.size() < 2) continue;
      if (tag[0] == "e") {
        if (auto id = storage::parse_event_id(tag[1])) add_unique(keys.ids, *id);
      } else if (tag[0] == "a") {
        if (auto address = storage::parse_address(tag[1])) add_unique(keys.addresses, *address);
      }
    }
  }
  return keys;
}

Status PrefetchedTarget::prefetch(PgConnection& conn, const BatchKeys& keys) {
  if (Status s = prefetch_ids(conn, keys); !s) return s;
  return prefetch_addresses(conn, keys);
}

Status PrefetchedTarget::prefetch_ids(PgConnection& conn, const BatchKeys& keys) {
  PgParams p;
  p.add_bytes_array(std::span<const EventId>(keys.ids));
  auto stored = conn.exec(kEvents, p);
  if (!stored) return std::move(stored).error();
  for (const EventId& id : keys.ids) events_[id] = std::nullopt;
  const PGresult* r = stored->get();
  for (int row = 0; row < PQntuples(r); ++row) {
    StoredRef ref;
    if (!get_bytes32(r, row, 0, ref.id) || !get_bytes32(r, row, 1, ref.pubkey)) return malformed();
    ref.created_at = get_int(r, row, 2);
    ref.kind = static_cast<std::uint16_t>(get_int(r, row, 3));
    ref.seq = static_cast<std::uint64_t>(get_int(r, row, 4));
    events_[ref.id] = ref;
  }
  auto tombs = conn.exec(kTombstones, p);
  if (!tombs) return std::move(tombs).error();
  tombstoned_known_.insert(keys.ids.begin(), keys.ids.end());
  r = tombs->get();
  for (int row = 0; row < PQntuples(r); ++row) {
    std::pair<EventId, Pubkey> t;
    if (!get_bytes32(r, row, 0, t.first) || !get_bytes32(r, row, 1, t.second)) return malformed();
    tombstones_.insert(t);
  }
  return Status::ok();
}

Status PrefetchedTarget::prefetch_addresses(PgConnection& conn, const BatchKeys& keys) {
  if (keys.addresses.empty()) return Status::ok();
  std::vector<std::string_view> pubkeys;
  std::vector<std::int64_t> kinds;
  std::vector<std::string_view> ds;
  for (const Address& a : keys.addresses) {
    pubkeys.push_back(bytes_of(a.pubkey));
    kinds.push_back(a.kind);
    ds.push_back(a.d);
  }
  PgParams p;
  p.add_bytes_array(pubkeys).add_int_array(kinds).add_bytes_array(ds);
  // The slot a row's ordinality names, or nothing when it is out of range.
  auto slot = [&](const PGresult* r, int row, int col) -> const Address* {
    const std::int64_t i = get_int(r, row, col);
    if (i < 1 || i > static_cast<std::int64_t>(keys.addresses.size())) return nullptr;
    return &keys.addresses[static_cast<std::size_t>(i - 1)];
  };
  auto versions = conn.exec(kVersions, p);
  if (!versions) return std::move(versions).error();
  for (const Address& a : keys.addresses) versions_[a].clear();
  const PGresult* r = versions->get();
  for (int row = 0; row < PQntuples(r); ++row) {
    const Address* a = slot(r, row, 3);
    StoredRef ref;
    if (a == nullptr || !get_bytes32(r, row, 0, ref.id)) return malformed();
    ref.pubkey = a->pubkey;
    ref.kind = a->kind;
    ref.created_at = get_int(r, row, 1);
    ref.seq = static_cast<std::uint64_t>(get_int(r, row, 2));
    versions_[*a].push_back(ref);
  }
  auto tombs = conn.exec(kAddressTombstones, p);
  if (!tombs) return std::move(tombs).error();
  for (const Address& a : keys.addresses) address_tombstones_[a] = std::nullopt;
  r = tombs->get();
  for (int row = 0; row < PQntuples(r); ++row) {
    const Address* a = slot(r, row, 1);
    if (a == nullptr) return malformed();
    address_tombstones_[*a] = get_int(r, row, 0);
  }
  return Status::ok();
}

Result<std::optional<StoredRef>> PrefetchedTarget::find(const EventId& id) {
  if (auto it = events_.find(id); it != events_.end()) return it->second;
  return inner_.find(id);
}

Result<bool> PrefetchedTarget::id_deleted(const EventId& id, const Pubkey& author) {
  if (tombstoned_known_.count(id) == 0) return inner_.id_deleted(id, author);
  return tombstones_.count({id, author}) != 0;
}

Result<std::optional<std::int64_t>> PrefetchedTarget::address_deleted_until(
    const Address& address) {
  if (auto it = address_tombstones_.find(address); it != address_tombstones_.end()) {
    return it->second;
  }
  return inner_.address_deleted_until(address);
}

Status PrefetchedTarget::versions(const Address& address, std::vector<StoredRef>& out) {
  auto it = versions_.find(address);
  if (it == versions_.end()) return inner_.versions(address, out);
  out = it->second;
  return Status::ok();
}

Status PrefetchedTarget::remove(const EventId& id) {
  if (Status s = inner_.remove(id); !s) return s;
  events_[id] = std::nullopt;
  for (auto& [address, refs] : versions_) {
    std::erase_if(refs, [&](const StoredRef& ref) { return ref.id == id; });
  }
  return Status::ok();
}

Result<std::uint64_t> PrefetchedTarget::insert(const EventPtr& event) {
  auto seq = inner_.insert(event);
  if (!seq) return seq;
  const StoredRef ref{event->id(), event->pubkey(), event->created_at(), event->kind(), *seq};
  events_[ref.id] = ref;
  if (auto address = address_of(*event)) {
    if (auto it = versions_.find(*address); it != versions_.end()) it->second.push_back(ref);
  }
  return seq;
}

Status PrefetchedTarget::add_id_tombstone(const EventId& id, const Pubkey& author) {
  if (Status s = inner_.add_id_tombstone(id, author); !s) return s;
  if (tombstoned_known_.count(id) != 0) tombstones_.insert({id, author});
  return Status::ok();
}

Status PrefetchedTarget::add_address_tombstone(const Address& address, std::int64_t until) {
  if (Status s = inner_.add_address_tombstone(address, until); !s) return s;
  if (auto it = address_tombstones_.find(address); it != address_tombstones_.end()) {
    it->second = it->second ? std::max(*it->second, until) : until;
  }
  return Status::ok();
}

}  // namespace relaycore::postgres
