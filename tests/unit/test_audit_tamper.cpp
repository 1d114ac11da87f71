// Tampering with a copy of a good audit log through SQLite directly: the verifier must name the
// first record that was touched, and say what is wrong with it.
#include <catch2/catch.hpp>

#include "test_audit_util.hpp"

using namespace relaycore;

namespace {

constexpr std::uint64_t kRecords = 300;
constexpr std::uint64_t kMiddle = 150;

// A good 300-record chain, and a copy of it to tamper with.
struct TamperFixture {
  test::TempDir dir;
  std::string good = dir.file("good.db");
  std::string copy;

  TamperFixture() {
    test::write_chain(good, 1, kRecords);
    copy = test::copy_db(dir, good, "tampered.db");
  }
};

AuditVerifyReport verify_bad(const std::string& path) {
  Result<AuditVerifyReport> report = verify_audit_log(path);
  REQUIRE(report);
  INFO("bad record " << report->first_bad_seq << ": " << report->problem);
  CHECK_FALSE(report->ok);
  CHECK_FALSE(report->problem.empty());
  return *report;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Changes one column of the middle record and expects a hash mismatch right there.
void expect_edit_detected(const std::string& assignment) {
  TamperFixture f;
  test::tamper(f.copy,
               "UPDATE records SET " + assignment + " WHERE seq = " + std::to_string(kMiddle));
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == kMiddle);
  CHECK(report.records == kMiddle - 1);
  CHECK(contains(report.problem, "hash mismatch"));
  // The untouched original still verifies.
  Result<AuditVerifyReport> good = verify_audit_log(f.good);
  REQUIRE(good);
  CHECK(good->ok);
  CHECK(good->records == kRecords);
}

}  // namespace

TEST_CASE("audit verify detects an edited timestamp", "[audit]") {
  expect_edit_detected("timestamp = timestamp + 1");
}

TEST_CASE("audit verify detects an edited action", "[audit]") {
  expect_edit_detected("action = CASE action WHEN 1 THEN 2 ELSE 1 END");
}

TEST_CASE("audit verify detects an edited event_id", "[audit]") {
  expect_edit_detected("event_id = zeroblob(32)");
}

TEST_CASE("audit verify detects an edited kind", "[audit]") {
  expect_edit_detected("kind = (kind + 1) % 65536");
}

TEST_CASE("audit verify detects an edited actor", "[audit]") {
  expect_edit_detected("actor = zeroblob(32)");
}

TEST_CASE("audit verify detects an edited event_seq", "[audit]") {
  expect_edit_detected("event_seq = event_seq + 1000");
}

TEST_CASE("audit verify detects an edited hash", "[audit]") {
  expect_edit_detected("hash = zeroblob(32)");
}

TEST_CASE("audit verify detects an edited prev_hash", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy, "UPDATE records SET prev_hash = zeroblob(32) WHERE seq = 150");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == kMiddle);
  CHECK(contains(report.problem, "prev_hash"));
}

TEST_CASE("audit verify detects a malformed field", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy, "UPDATE records SET actor = x'0102' WHERE seq = 150");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == kMiddle);
  CHECK(contains(report.problem, "actor"));
}

TEST_CASE("audit verify detects two records swapped", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy,
               "UPDATE records SET seq = -1 WHERE seq = 100;"
               "UPDATE records SET seq = 100 WHERE seq = 200;"
               "UPDATE records SET seq = 200 WHERE seq = -1;");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == 100);
  CHECK(contains(report.problem, "reordered"));
}

TEST_CASE("audit verify detects two adjacent records swapped", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy,
               "UPDATE records SET seq = -1 WHERE seq = 150;"
               "UPDATE records SET seq = 150 WHERE seq = 151;"
               "UPDATE records SET seq = 151 WHERE seq = -1;");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == kMiddle);
  CHECK(contains(report.problem, "reordered"));
}

TEST_CASE("audit verify detects a deleted middle record", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy, "DELETE FROM records WHERE seq = 150");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == kMiddle);
  CHECK(contains(report.problem, "gap"));
}

TEST_CASE("audit verify detects a deleted first record", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy, "DELETE FROM records WHERE seq = 1");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == 1);
  CHECK(contains(report.problem, "missing"));
}

TEST_CASE("audit verify detects a truncated tail", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy, "DELETE FROM records WHERE seq > 295");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == 296);
  CHECK(report.records == 295);
  CHECK(contains(report.problem, "truncated tail"));
  CHECK(contains(report.problem, "300"));
}

TEST_CASE("audit verify detects a missing head", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy, "DELETE FROM head");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == kRecords + 1);
  CHECK(contains(report.problem, "broken head"));
}

TEST_CASE("audit verify detects a head whose hash was changed", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy, "UPDATE head SET hash = zeroblob(32)");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == kRecords);
  CHECK(contains(report.problem, "broken head"));
}

TEST_CASE("audit verify detects a record appended past the head", "[audit]") {
  TamperFixture f;
  test::tamper(f.copy,
               "INSERT INTO records SELECT seq + 1, timestamp, action, event_id, kind, actor, "
               "event_seq, hash, hash FROM records WHERE seq = 300");
  AuditVerifyReport report = verify_bad(f.copy);
  CHECK(report.first_bad_seq == kRecords + 1);
}
