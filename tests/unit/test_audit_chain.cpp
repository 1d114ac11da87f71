// The audit record encoding, pinned by vectors computed independently (Python hashlib over the
// encoding docs/audit.md describes), so that a change to the format cannot slip in unnoticed.
#include <catch2/catch.hpp>

#include "audit/audit_chain.hpp"
#include "relaycore/hex.hpp"
#include "test_audit_util.hpp"

using namespace relaycore;

namespace {

AuditRecord vector_record() {
  AuditRecord r;
  r.timestamp = 1700000000;
  r.action = AuditAction::kEventCreated;
  for (std::uint8_t i = 0; i < 32; ++i) {
    r.event_id[i] = static_cast<std::uint8_t>(i + 1);
    r.actor[i] = static_cast<std::uint8_t>(0xa0 + i);
  }
  r.kind = 1;
  r.event_seq = 7;
  return r;
}

constexpr const char* kHash1 = "cc918283b868a0915d8771d6d935c9f573fbc3e54df6c938d7636aae92cb14bc";
constexpr const char* kHash2 = "d0b5eb3db65a12f17034e1464e47a5f73f874e86cbb84d25142439b02f7570b0";

}  // namespace

TEST_CASE("audit action names", "[audit]") {
  CHECK(std::string(audit_action_name(AuditAction::kEventCreated)) == "event_created");
  CHECK(std::string(audit_action_name(AuditAction::kEventDeleted)) == "event_deleted");
  CHECK(std::string(audit_action_name(AuditAction::kEventReplaced)) == "event_replaced");
  CHECK(std::string(audit_action_name(AuditAction::kRecovered)) == "recovered");
  CHECK(std::string(audit_action_name(AuditAction::kEventExpired)) == "event_expired");
  CHECK(std::string(audit_action_name(AuditAction::kEventErased)) == "event_erased");
  CHECK(std::string(audit_action_name(AuditAction::kRetentionMaxAge)) == "retention_max_age");
  CHECK(std::string(audit_action_name(AuditAction::kRetentionMaxPerAuthor)) ==
        "retention_max_per_author");
  CHECK(std::string(audit_action_name(AuditAction::kRetentionMaxBytes)) == "retention_max_bytes");
  CHECK(std::string(audit_action_name(static_cast<AuditAction>(99))) == "unknown");
}

TEST_CASE("audit record hash matches the documented encoding", "[audit]") {
  crypto::Sha256 sha;
  AuditRecord first = vector_record();
  crypto::Digest h1 = audit::record_hash(sha, 1, first, audit::kZeroHash);
  CHECK(to_hex(h1) == kHash1);

  AuditRecord second = vector_record();
  second.timestamp = -5;
  second.action = AuditAction::kEventDeleted;
  second.kind = 65535;
  second.event_seq = 0;
  CHECK(to_hex(audit::record_hash(sha, 2, second, h1)) == kHash2);
}

TEST_CASE("audit sink stores the documented hashes", "[audit]") {
  test::TempDir dir;
  std::string path = dir.file("audit.db");
  {
    auto sink = new_sqlite_audit_log(SqliteAuditOptions{path, 16});
    REQUIRE(sink);
    AuditRecord second = vector_record();
    second.timestamp = -5;
    second.action = AuditAction::kEventDeleted;
    second.kind = 65535;
    second.event_seq = 0;
    REQUIRE((*sink)->enqueue({vector_record(), second}).is_ok());
    REQUIRE((*sink)->close().is_ok());
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT hex(hash) FROM records ORDER BY seq", -1, &stmt,
                             nullptr) == SQLITE_OK);
  std::vector<std::string> hashes;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::string h = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    hashes.push_back(h);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  REQUIRE(hashes.size() == 2);
  CHECK(hashes[0] == kHash1);
  CHECK(hashes[1] == kHash2);
}
