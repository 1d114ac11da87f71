// Storage: where accepted events live. relaycore ships SQLite (the default, in sqlite.hpp) and
// in-memory storage; hosts may plug in their own, and tests/conformance/ holds the suite every
// storage must pass.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

// What a batch write did with one event.
enum class WriteOutcome : std::uint8_t {
  kStored,     // new, now stored
  kReplaced,   // stored, and it superseded older versions (listed in WriteResult::removed)
  kDuplicate,  // this id was already stored; nothing changed
  kDeleted,    // its author deleted it earlier (NIP-09); not stored again
  kRejected,   // not stored; WriteResult::status says why (e.g. a newer version exists)
};

// Why an event left the store.
enum class RemovalReason : std::uint8_t {
  kReplaced = 1,   // a newer version of its replaceable or addressable slot was stored
  kDeleted = 2,    // its author's NIP-09 deletion (kind 5) named it
  kExpired = 3,    // its NIP-40 expiration passed and purge_expired() removed it
  kErased = 4,     // erase() removed it: an operator's delete
  kRetention = 5,  // a retention rule removed it (RemovedEvent::rule says which)
};

// The retention rule (relaycore/retention.hpp) that removed an event.
enum class RetentionRule : std::uint8_t {
  kNone = 0,          // not removed by retention
  kMaxAge = 1,        // MaxAgeRule: older than its kind may be
  kMaxPerAuthor = 2,  // MaxPerAuthorRule: beyond its author's newest events of those kinds
  kMaxBytes = 3,      // RetentionRules::max_bytes: the storage was over its size
};

// An event a storage removed, with what the audit log and change listeners need to know of it.
struct RemovedEvent {
  EventId id{};
  std::uint16_t kind = 0;
  std::uint64_t seq = 0;
  RemovalReason reason = RemovalReason::kReplaced;
  // The removed event's author.
  Pubkey pubkey{};
  // For kRetention, the rule that removed it.
  RetentionRule rule = RetentionRule::kNone;
};

struct WriteResult {
  WriteOutcome outcome = WriteOutcome::kRejected;
  // For kRejected: the reason, with a NIP-01 prefix.
  Status status;
  // The commit sequence the storage gave a stored event (kStored, kReplaced); 0 otherwise.
  // Sequences grow with every commit, so "committed at or before S" is a sequence test.
  std::uint64_t seq = 0;
  // Ids this write removed: older versions of a replaceable or addressable event, or the
  // events a kind 5 deleted.
  std::vector<RemovedEvent> removed;
};

// One stored event with its commit sequence.
struct StoredEvent {
  EventPtr event;
  std::uint64_t seq = 0;
};

// A position in the order history is served in: newest first, then lowest id first.
struct EventKey {
  std::int64_t created_at = 0;
  EventId id{};

  // True when `a` comes before `b` in that order.
  friend bool operator<(const EventKey& a, const EventKey& b) noexcept {
    if (a.created_at != b.created_at) return a.created_at > b.created_at;
    return a.id < b.id;
  }
  friend bool operator==(const EventKey& a, const EventKey& b) noexcept = default;
};

// The key of a stored event.
inline EventKey event_key(const Event& e) noexcept { return {e.created_at(), e.id()}; }

// The parameters of a history query.
struct QueryRequest {
  // Only events committed at or before this sequence; UINT64_MAX for all.
  std::uint64_t max_seq = UINT64_MAX;
  // Events whose NIP-40 expiration is at or before `now` are not returned.
  std::int64_t now = 0;
  // Applied when a filter has no limit, and as the ceiling for those that do.
  std::uint32_t max_limit = 500;
  // When set, only events after this position (older, or as old with a higher id): a query
  // resumes where an earlier one stopped. The limit counts from here.
  std::optional<EventKey> after;
};

// Newest wins; on equal created_at the lowest id wins (NIP-01). True when version (a_created,
// a_id) supersedes (b_created, b_id). Every storage decides replacement with this.
RELAYCORE_API bool supersedes(std::int64_t a_created, const EventId& a_id, std::int64_t b_created,
                              const EventId& b_id) noexcept;

// [Threading] write_batch(), purge_expired(), erase(), size_bytes() and maintain() are called by
//   one writer thread at a time. query(), scan_keys(), count(), contains() and max_seq() are called
//   from several reader threads at once, concurrently with writes.
// [Blocking] Every method may block on I/O; relaycore calls them only from its own pool
//   threads, never from a host thread.
// [Ownership] Events are shared, immutable EventPtr; a storage may keep the pointers.
// [Errors] Methods report failure through Status ("error: ..."); they must not throw. A failed
//   write_batch must leave the store as it was before the batch.
class RELAYCORE_API Storage {
 public:
  virtual ~Storage() = default;

  // Writes the events in one atomic transaction, in order, and fills `results` (one per event).
  // Applies NIP-01 replacement (kinds 0, 3, 10000-19999 by pubkey and kind; 30000-39999 also by
  // d tag), NIP-09 deletion (a kind 5 removes the author's events named by its e and a tags, and
  // later re-publication of them is refused with kDeleted). Ephemeral events are never passed.
  // On failure nothing is written and every event counts as not stored.
  virtual Status write_batch(std::span<const EventPtr> events,
                             std::vector<WriteResult>& results) = 0;

  // Calls `visit` for the events matching `filter`, newest first (created_at descending, then
  // id ascending), at most min(filter.limit, request.max_limit). `visit` returns false to stop.
  // A filter with a NIP-50 search comes best match first instead (then newest first), the limit
  // applied after ranking; relaycore reads it in one call, never resuming it from
  // request.after (docs/search.md).
  virtual Status query(const Filter& filter, const QueryRequest& request,
                       const std::function<bool(const StoredEvent&)>& visit) = 0;

  // Calls `visit` with the key of each event query() would return for the same arguments (the
  // newest min(filter.limit, request.max_limit) matches), but oldest first: created_at
  // ascending, then id ascending, the order a NIP-77 sync reconciles in. `visit` returns false
  // to stop. The default collects the events through query(); a storage overrides it to read
  // just the keys, from an index.
  virtual Status scan_keys(const Filter& filter, const QueryRequest& request,
                           const std::function<bool(const EventKey&)>& visit);

  // The number of stored events matching any of the filters (NIP-45), limits ignored.
  virtual Result<std::uint64_t> count(const std::vector<Filter>& filters,
                                      const QueryRequest& request) = 0;

  // True when an event with this id is stored. The one read allowed before a signature check.
  virtual Result<bool> contains(const EventId& id) = 0;

  // The highest commit sequence stored (0 when empty).
  virtual Result<std::uint64_t> max_seq() = 0;

  // Events committed after `after_seq`, in sequence order; used to reconcile the audit log.
  virtual Status scan_since(std::uint64_t after_seq,
                            const std::function<bool(const StoredEvent&)>& visit) = 0;

  // Removes events whose NIP-40 expiration is at or before `now`, in one transaction, and
  // returns them (reason kExpired) in sequence order, so that each removal can be audited.
  virtual Result<std::vector<RemovedEvent>> purge_expired(std::int64_t now) = 0;

  // Removes the given events outright (an operator's delete, not NIP-09: no tombstone is left)
  // in one transaction, and returns those that were stored (reason kErased) in the order given.
  // erase_events() in relaycore/storage_rules.hpp implements it over the write primitives.
  virtual Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) = 0;

  // The bytes of the stored events' canonical JSON (Event::json(), as the relay serves them),
  // summed, for RetentionRules::max_bytes: the same measure on every storage, which drops by an
  // event's JSON the moment the event is removed, whatever removed it. The files or memory a
  // storage uses are a multiple of it (indexes, tags, free pages). Called after every retention
  // batch, so it must be cheap: the built-in storages keep a running total. The default says
  // "error: ..." (the storage does not know), and a size limit is then not applied.
  virtual Result<std::uint64_t> size_bytes();

  // One bounded step of the storage's own upkeep, kept out of write_batch so that commits stay
  // short: for SQLite, adding the words of the events stored since its last batch to the search
  // index, and merging the index's segments. The writer calls it when nothing is queued, again
  // at once for as long as it returns true (more to do), and under steady load about once a
  // second. A step should take a few milliseconds at most: events that arrive
  // meanwhile wait for it. The default has nothing to do and returns false.
  virtual Result<bool> maintain();
};

// In-memory storage: fast and forgetful; for tests, ephemeral relays and benchmarks.
RELAYCORE_API std::shared_ptr<Storage> new_memory_storage();

}  // namespace relaycore
