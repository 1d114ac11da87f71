// The storage rules (relaycore/storage_rules.hpp): what every storage decides the same way.
#include "relaycore/storage_rules.hpp"

#include <utility>

#include "storage/storage_util.hpp"

namespace relaycore {

std::optional<Address> address_of(const Event& event) {
  switch (event.kind_class()) {
    case KindClass::kReplaceable:
      return Address{event.kind(), event.pubkey(), std::string()};
    case KindClass::kAddressable:
      return Address{event.kind(), event.pubkey(), std::string(event.d_tag())};
    default:
      return std::nullopt;
  }
}

namespace {

using storage::ephemeral_status;
using storage::newer_version_status;
using storage::parse_address;
using storage::parse_event_id;
using storage::set_outcome;

RemovedEvent removed_event(const StoredRef& ref, RemovalReason reason) {
  return RemovedEvent{ref.id, ref.kind, ref.seq, reason, ref.pubkey};
}

// True when a stored copy would be refused because its author deleted it. A deletion request is
// never itself deletable (NIP-09: deleting a deletion has no effect).
Result<bool> is_deleted(WriteTarget& target, const Event& event,
                        const std::optional<Address>& address) {
  if (event.kind() == kDeletionKind) return false;
  auto by_id = target.id_deleted(event.id(), event.pubkey());
  if (!by_id.is_ok()) return std::move(by_id).error();
  if (*by_id) return true;
  if (!address) return false;
  auto until = target.address_deleted_until(*address);
  if (!until) return std::move(until).error();
  return until->has_value() && event.created_at() <= **until;
}

// NIP-09 e tag: removes the named event when the deleter wrote it, and remembers the request so
// that the event cannot come back later. Other authors' events are left alone.
Status delete_by_id(WriteTarget& target, const Event& deletion, const EventId& id,
                    std::vector<RemovedEvent>& removed) {
  if (Status s = target.add_id_tombstone(id, deletion.pubkey()); !s) return s;
  auto found = target.find(id);
  if (!found) return std::move(found).error();
  const std::optional<StoredRef>& ref = *found;
  if (!ref || ref->pubkey != deletion.pubkey() || ref->kind == kDeletionKind) return Status::ok();
  if (Status s = target.remove(id); !s) return s;
  removed.push_back(removed_event(*ref, RemovalReason::kDeleted));
  return Status::ok();
}

// NIP-09 a tag: removes every version of the deleter's own address up to the request's
// created_at, and remembers that bound for versions that arrive later.
Status delete_by_address(WriteTarget& target, const Event& deletion, const Address& address,
                         std::vector<RemovedEvent>& removed) {
  if (address.pubkey != deletion.pubkey()) return Status::ok();
  if (Status s = target.add_address_tombstone(address, deletion.created_at()); !s) return s;
  std::vector<StoredRef> versions;
  if (Status s = target.versions(address, versions); !s) return s;
  for (const StoredRef& v : versions) {
    if (v.created_at > deletion.created_at()) continue;
    if (Status s = target.remove(v.id); !s) return s;
    removed.push_back(removed_event(v, RemovalReason::kDeleted));
  }
  return Status::ok();
}

Status apply_deletion(WriteTarget& target, const Event& deletion,
                      std::vector<RemovedEvent>& removed) {
  for (const Tag& tag : deletion.tags()) {
    if (tag.size() < 2) continue;
    if (tag[0] == "e") {
      if (auto id = parse_event_id(tag[1])) {
        if (Status s = delete_by_id(target, deletion, *id, removed); !s) return s;
      }
    } else if (tag[0] == "a") {
      if (auto address = parse_address(tag[1])) {
        if (Status s = delete_by_address(target, deletion, *address, removed); !s) return s;
      }
    }
  }
  return Status::ok();
}

}  // namespace

Status apply_event(WriteTarget& target, const EventPtr& event, WriteResult& result) {
  set_outcome(result, WriteOutcome::kRejected);
  if (event->kind_class() == KindClass::kEphemeral) {
    result.status = ephemeral_status();
    return Status::ok();
  }

  auto existing = target.find(event->id());
  if (!existing) return std::move(existing).error();
  if (existing->has_value()) {
    set_outcome(result, WriteOutcome::kDuplicate, Status::duplicate("already have this event"));
    return Status::ok();
  }

  const std::optional<Address> address = address_of(*event);
  auto deleted = is_deleted(target, *event, address);
  if (!deleted.is_ok()) return std::move(deleted).error();
  if (*deleted) {
    set_outcome(result, WriteOutcome::kDeleted,
                Status::blocked("this event was deleted by its author"));
    return Status::ok();
  }

  // Replacement: the slot keeps one version. Decide before touching anything, so a rejected
  // write leaves the stored version in place.
  std::vector<StoredRef> versions;
  if (address) {
    if (Status s = target.versions(*address, versions); !s) return s;
    for (const StoredRef& v : versions) {
      if (supersedes(v.created_at, v.id, event->created_at(), event->id())) {
        result.status = newer_version_status();
        return Status::ok();
      }
    }
  }
  std::vector<RemovedEvent> removed;
  for (const StoredRef& v : versions) {
    if (Status s = target.remove(v.id); !s) return s;
    removed.push_back(removed_event(v, RemovalReason::kReplaced));
  }

  auto seq = target.insert(event);
  if (!seq) return std::move(seq).error();
  const bool replaced = !removed.empty();

  if (event->kind() == kDeletionKind) {
    if (Status s = apply_deletion(target, *event, removed); !s) return s;
  }

  result.outcome = replaced ? WriteOutcome::kReplaced : WriteOutcome::kStored;
  result.status = Status::ok();
  result.seq = *seq;
  result.removed = std::move(removed);
  return Status::ok();
}

Status erase_events(WriteTarget& target, std::span<const EventId> ids,
                    std::vector<RemovedEvent>& removed) {
  for (const EventId& id : ids) {
    auto found = target.find(id);
    if (!found) return std::move(found).error();
    if (!found->has_value()) continue;
    if (Status s = target.remove(id); !s) return s;
    removed.push_back(removed_event(**found, RemovalReason::kErased));
  }
  return Status::ok();
}

}  // namespace relaycore
