// verify_audit_log: walks the chain in seq order inside one read transaction, so that it sees
// the records and the head as one consistent snapshot even while a writer is appending.
#include <fmt/format.h>

#include <string>

#include "audit/audit_chain.hpp"
#include "audit/audit_db.hpp"
#include "relaycore/audit.hpp"

namespace relaycore {
namespace audit {
namespace {

// One record as read back, with the type of every column checked.
struct StoredRecord {
  AuditRecord fields;
  crypto::Digest prev_hash{};
  crypto::Digest hash{};
};

// Reads columns 1..8 of a records row (after seq); on a malformed column, says which.
std::string read_record(sqlite3_stmt* row, StoredRecord& out) {
  std::int64_t action = 0;
  std::int64_t kind = 0;
  std::int64_t event_seq = 0;
  if (!column_int(row, 1, out.fields.timestamp)) return "the timestamp is not an integer";
  if (!column_int(row, 2, action)) return "the action is not an integer";
  std::optional<AuditAction> known = action_from_code(action);
  if (!known) return fmt::format("unknown action code {}", action);
  out.fields.action = *known;
  if (!column_bytes(row, 3, out.fields.event_id)) return "the event_id is not 32 bytes";
  if (!column_int(row, 4, kind) || kind < 0 || kind > 0xFFFF) {
    return "the kind is not an integer from 0 to 65535";
  }
  out.fields.kind = static_cast<std::uint16_t>(kind);
  if (!column_bytes(row, 5, out.fields.actor)) return "the actor is not 32 bytes";
  if (!column_int(row, 6, event_seq)) return "the event_seq is not an integer";
  out.fields.event_seq = static_cast<std::uint64_t>(event_seq);
  if (!column_bytes(row, 7, out.prev_hash)) return "the prev_hash is not 32 bytes";
  if (!column_bytes(row, 8, out.hash)) return "the hash is not 32 bytes";
  return {};
}

class Verifier {
 public:
  explicit Verifier(sqlite3* db) : db_(db) {}

  Result<AuditVerifyReport> run() {
    if (Status s = walk_records(); !s) return s;
    if (report_.problem.empty()) {
      if (Status s = check_head(); !s) return s;
    }
    report_.ok = report_.problem.empty();
    return report_;
  }

 private:
  void fail(std::uint64_t seq, std::string problem) {
    report_.first_bad_seq = seq;
    report_.problem = std::move(problem);
  }

  Status walk_records() {
    Result<Stmt> stmt =
        prepare(db_, fmt::format("SELECT {} FROM records ORDER BY seq", kRecordColumns));
    if (!stmt) return stmt.error();
    sqlite3_stmt* row = stmt->get();
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(row)) == SQLITE_ROW) {
      std::uint64_t expected = last_seq_ + 1;
      std::int64_t seq = 0;
      if (!column_int(row, 0, seq) || seq <= 0) {
        fail(expected, fmt::format("a record where {} should be has no valid seq", expected));
        return Status::ok();
      }
      auto useq = static_cast<std::uint64_t>(seq);
      if (useq > expected) {
        fail(expected, expected == 1
                           ? fmt::format("missing: the log starts at record {}", useq)
                           : fmt::format("missing: the record after {} is {} (a gap in the chain)",
                                         last_seq_, useq));
        return Status::ok();
      }
      if (useq < expected) {
        fail(useq, fmt::format("out of order: it comes after record {}", last_seq_));
        return Status::ok();
      }
      StoredRecord record;
      if (std::string bad = read_record(row, record); !bad.empty()) {
        fail(useq, std::move(bad));
        return Status::ok();
      }
      if (record.prev_hash != last_hash_) {
        Result<std::string> why = explain_prev_mismatch(useq, record.prev_hash);
        if (!why) return why.error();
        fail(useq, std::move(why).value());
        return Status::ok();
      }
      if (record_hash(sha_, useq, record.fields, record.prev_hash) != record.hash) {
        fail(useq,
             "hash mismatch: the stored hash does not match the record's fields "
             "(the record was edited)");
        return Status::ok();
      }
      last_seq_ = useq;
      last_hash_ = record.hash;
      report_.records += 1;
      if (record.fields.action == AuditAction::kEventCreated ||
          record.fields.action == AuditAction::kRecovered) {
        last_event_seq_ = std::max(last_event_seq_, record.fields.event_seq);
      }
    }
    if (rc != SQLITE_DONE) return sqlite_error(db_, "read records");
    return Status::ok();
  }

  // A prev_hash that is the hash of some other record means records were moved around; one
  // that matches nothing means the previous record, or this field, was changed.
  Result<std::string> explain_prev_mismatch(std::uint64_t seq, const crypto::Digest& prev_hash) {
    if (seq == 1) return std::string("the first record's prev_hash is not all zero");
    Result<Stmt> find = prepare(db_, "SELECT seq FROM records WHERE hash = ? LIMIT 1");
    if (!find) return find.error();
    sqlite3_bind_blob(find->get(), 1, prev_hash.data(), 32, SQLITE_STATIC);
    int rc = sqlite3_step(find->get());
    if (rc == SQLITE_ROW) {
      return fmt::format(
          "out of order: its prev_hash is the hash of record {}, not of record {} (records were "
          "reordered)",
          static_cast<std::uint64_t>(sqlite3_column_int64(find->get(), 0)), seq - 1);
    }
    if (rc != SQLITE_DONE) return sqlite_error(db_, "look up prev_hash");
    return fmt::format(
        "prev_hash does not match the hash of record {} (a record was edited, removed or "
        "inserted)",
        seq - 1);
  }

  // The head must name the last record: seq, hash and the highest created/recovered event_seq.
  Status check_head() {
    Result<Stmt> stmt = prepare(db_, "SELECT seq, hash, last_event_seq FROM head");
    if (!stmt) return stmt.error();
    sqlite3_stmt* row = stmt->get();
    std::uint64_t next = last_seq_ + 1;
    int rc = sqlite3_step(row);
    if (rc == SQLITE_DONE) {
      fail(next, "broken head: the head row is missing, so a truncated tail cannot be ruled out");
      return Status::ok();
    }
    if (rc != SQLITE_ROW) return sqlite_error(db_, "read head");
    std::int64_t head_seq = 0;
    std::int64_t head_event_seq = 0;
    crypto::Digest head_hash{};
    if (!column_int(row, 0, head_seq) || head_seq < 0 || !column_bytes(row, 1, head_hash) ||
        !column_int(row, 2, head_event_seq)) {
      fail(next, "broken head: the head row's seq, hash or last_event_seq is malformed");
      return Status::ok();
    }
    if (sqlite3_step(row) != SQLITE_DONE) {
      fail(next, "broken head: the head table has more than one row");
      return Status::ok();
    }
    auto useq = static_cast<std::uint64_t>(head_seq);
    if (useq > last_seq_) {
      fail(next, fmt::format("truncated tail: the head says the log ends at record {}, but the "
                             "last record is {} (records {}..{} are missing)",
                             useq, last_seq_, next, useq));
    } else if (useq < last_seq_) {
      fail(useq + 1, fmt::format("past the head: the head says the log ends at record {} (records "
                                 "were added outside the log, or the head was rolled back)",
                                 useq));
    } else if (head_hash != last_hash_) {
      fail(last_seq_ == 0 ? 1 : last_seq_,
           fmt::format("broken head: the head's hash does not match the hash of record {}",
                       last_seq_));
    } else if (static_cast<std::uint64_t>(head_event_seq) != last_event_seq_) {
      fail(last_seq_ == 0 ? 1 : last_seq_,
           fmt::format("broken head: the head's last_event_seq {} does not match the records' {}",
                       static_cast<std::uint64_t>(head_event_seq), last_event_seq_));
    }
    return Status::ok();
  }

  sqlite3* db_;
  crypto::Sha256 sha_;
  AuditVerifyReport report_;
  std::uint64_t last_seq_ = 0;
  crypto::Digest last_hash_{};
  std::uint64_t last_event_seq_ = 0;
};

}  // namespace
}  // namespace audit

Result<AuditVerifyReport> verify_audit_log(const std::string& path) {
  using namespace audit;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return sqlite_error(db.get(), fmt::format("cannot open {}", path));
  sqlite3_busy_timeout(db.get(), 5000);
  if (Status s = exec(db.get(), "BEGIN"); !s) return s;
  Result<std::int64_t> version = read_format_version(db.get());
  if (!version) {
    return Status::error(fmt::format("audit: cannot read {}: {}", path, sqlite3_errmsg(db.get())));
  }
  if (*version == 0) {
    return Status::error(fmt::format("audit: {} is not a relaycore audit log", path));
  }
  if (*version != kFormatVersion) {
    return Status::error(fmt::format("audit: unsupported format version {}", *version));
  }
  Result<AuditVerifyReport> report = Verifier(db.get()).run();
  sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr);
  return report;
}

}  // namespace relaycore
