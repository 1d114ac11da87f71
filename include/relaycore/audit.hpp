// AuditSink: where the record of every change to the event store goes. The built-in sink is a
// tamper-evident hash chain in SQLite; hosts can plug in their own (a message bus, a SIEM).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

enum class AuditAction : std::uint8_t {
  kEventCreated = 1,
  kEventDeleted = 2,   // removed by its author's NIP-09 deletion
  kEventReplaced = 3,  // superseded by a newer replaceable or addressable version
  kRecovered = 4,      // committed before a crash whose audit record was lost; appended on open
  kEventExpired = 5,   // removed by a purge of NIP-40 expired events
  kEventErased = 6,    // removed outright by the operator (Relay::erase)
  // Removed by a retention rule (relaycore/retention.hpp), one action per rule.
  kRetentionMaxAge = 7,        // MaxAgeRule: older than its kind may be
  kRetentionMaxPerAuthor = 8,  // MaxPerAuthorRule: beyond its author's newest events
  kRetentionMaxBytes = 9,      // RetentionRules::max_bytes: the storage was over its size
};

// "event_created", "event_deleted", "event_replaced", "recovered", "event_expired",
// "event_erased", "retention_max_age", "retention_max_per_author", "retention_max_bytes".
RELAYCORE_API const char* audit_action_name(AuditAction action) noexcept;

struct AuditRecord {
  // The storage commit sequence of the event the record is about (0 for a removal).
  std::uint64_t event_seq = 0;
  // Unix seconds when relaycore committed the change.
  std::int64_t timestamp = 0;
  AuditAction action = AuditAction::kEventCreated;
  EventId event_id{};
  std::uint16_t kind = 0;
  // The pubkey that caused the change: the author of the stored, replacing or deleting event;
  // for an expiry the expired event's author, who set its expiration; all zero for an erase
  // or a retention removal, which the operator caused.
  Pubkey actor{};
};

// [Threading] enqueue() is called by relaycore's single writer thread; the sink may hand records
//   to its own threads. last_event_seq() and close() are called while nothing is enqueued.
// [Blocking] enqueue() blocks while the sink's bounded queue is full: this is how a slow sink
//   slows acks instead of growing memory or dropping records. It must never drop a record.
// [Ownership] The sink owns the records once enqueue() returns.
// [Errors] A failed enqueue returns "error: ..." and the batch's events are answered with
//   error: too, though they are already committed; open-time reconciliation then appends
//   their records.
class RELAYCORE_API AuditSink {
 public:
  virtual ~AuditSink() = default;

  // Hands over the records of one committed batch, in order.
  virtual Status enqueue(std::vector<AuditRecord> records) = 0;

  // The highest event_seq of a kEventCreated or kRecovered record the sink holds durably, so
  // relaycore can append kRecovered records for events committed after it.
  virtual Result<std::uint64_t> last_event_seq() = 0;

  // Writes out everything queued and stops; called by Relay::shutdown(), which passes a failure
  // on in its own Status. A failure says what was lost (the built-in sink: "error: audit: 12
  // records could not be written: ...").
  virtual Status close() = 0;

  // Records waiting in the queue; for stats.
  virtual std::size_t queued() const { return 0; }
};

struct SqliteAuditOptions {
  // The audit database file, created if missing.
  std::string path;
  // Records the queue holds before enqueue() blocks.
  // Default: 4096.
  std::size_t queue_capacity = 4096;
};

// The built-in tamper-evident log: an append-only SQLite table in which each record's hash
// covers a versioned, domain-separated, length-prefixed encoding of its fields and the previous
// record's hash.
RELAYCORE_API Result<std::shared_ptr<AuditSink>> new_sqlite_audit_log(
    const SqliteAuditOptions& options);

// What verify_audit_log found.
struct AuditVerifyReport {
  bool ok = false;
  std::uint64_t records = 0;
  // The sequence number of the first bad record (0 when ok), and what is wrong with it.
  std::uint64_t first_bad_seq = 0;
  std::string problem;
};

// Checks the whole chain in an audit database: every hash, every sequence number (no gaps, no
// reordering) and the stored head (no truncated tail).
RELAYCORE_API Result<AuditVerifyReport> verify_audit_log(const std::string& path);

}  // namespace relaycore
