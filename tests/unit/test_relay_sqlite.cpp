// A Relay on its default storage (SQLite) across a restart, and its stats.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "test_audit_util.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;
using test::now;

namespace {

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("relaycore-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("Default SQLite storage keeps events and audit across a restart", "[relay][sqlite]") {
  auto dir = temp_dir("restart");
  auto open = [&] {
    Options o;
    o.sqlite.path = (dir / "relay.db").string();  // storage left null: the SQLite default
    SqliteAuditOptions ao;
    ao.path = (dir / "audit.db").string();
    o.audit = new_sqlite_audit_log(ao).value();
    return Relay::open(std::move(o)).value();
  };
  EventPtr kept = test::signed_event(test::alice(), 1, now(), "kept");
  {
    auto relay = open();
    CHECK(relay->submit(kept).accepted);
    CHECK(relay->shutdown().message() == "");
  }
  {
    auto relay = open();
    OkResult again = relay->submit(kept);
    CHECK(again.accepted);
    CHECK(again.message == "duplicate: already have this event");
    auto conn = std::make_shared<test::RecordingConnection>();
    auto session = relay->open_session(conn, {});
    session->on_message(R"(["REQ","r",{}])");
    REQUIRE(conn->wait_count("[\"EOSE\"", 1));
    std::vector<std::string> frames = conn->frames();
    REQUIRE(frames.size() == 2);
    CHECK(frames[0] == "[\"EVENT\",\"r\"," + std::string(kept->json()) + "]");
    CHECK(relay->shutdown().message() == "");
  }
  Result<AuditVerifyReport> report = verify_audit_log((dir / "audit.db").string());
  REQUIRE(report.is_ok());
  CHECK(report->ok);
  CHECK(report->records == 1);  // the duplicate added no record
  std::filesystem::remove_all(dir);
}

namespace {

// A relay whose SQLite audit log has written one event's record and then cannot write the next
// one's: another writer took its place in the chain.
struct FailingAuditRelay {
  test::TempDir dir;
  std::shared_ptr<test::CapturingLogger> logger = std::make_shared<test::CapturingLogger>();
  std::unique_ptr<Relay> relay;

  FailingAuditRelay() {
    const std::string path = dir.file("audit.db");
    std::shared_ptr<AuditSink> audit = new_sqlite_audit_log(SqliteAuditOptions{path, 64}).value();
    Options o;
    o.storage = new_memory_storage();
    o.audit = audit;
    o.logger = logger;
    relay = Relay::open(std::move(o)).value();
    REQUIRE(relay->submit(test::signed_event(test::alice(), 1, now(), "audited")).accepted);
    REQUIRE(audit->last_event_seq());  // the first record is written
    test::tamper(path, test::kIntruder);
    // Handed to the sink, so answered accepted; the sink's writer then fails on it.
    REQUIRE(relay->submit(test::signed_event(test::alice(), 1, now(), "lost")).accepted);
  }
};

}  // namespace

TEST_CASE("Shutdown reports the audit records a failing audit log lost", "[relay][sqlite]") {
  FailingAuditRelay f;
  Status s = f.relay->shutdown();
  CHECK(s.code() == StatusCode::kError);
  CHECK(s.message().rfind("error: audit: 1 records could not be written: ", 0) == 0);
  // A second call returns the same result rather than ok.
  CHECK(f.relay->shutdown().message() == s.message());
}

TEST_CASE("A relay dropped without shutdown() logs what its drain lost", "[relay][sqlite]") {
  FailingAuditRelay f;
  f.relay.reset();
  std::vector<test::CapturingLogger::Line> logged =
      f.logger->lines_with("relay: shutdown: error: audit: 1 records could not be written: ");
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].level == LogLevel::kError);
}

TEST_CASE("Stats count verbs, outcomes, batches and latencies, and Prometheus text shows them",
          "[relay][stats]") {
  Options o;
  o.storage = new_memory_storage();
  auto relay = Relay::open(std::move(o)).value();
  auto conn = std::make_shared<test::RecordingConnection>();
  auto session = relay->open_session(conn, {});
  EventPtr e = test::signed_event(test::bob(), 1, now(), "counted");
  session->on_message("[\"EVENT\"," + std::string(e->json()) + "]");
  session->on_message("[\"EVENT\"," + std::string(e->json()) + "]");
  session->on_message(R"(["REQ","s",{}])");
  session->on_message(R"(["COUNT","c",{}])");
  session->on_message("garbage");
  REQUIRE(conn->wait_count("[\"OK\"", 2));
  REQUIRE(conn->wait_count("[\"COUNT\"", 1));
  RelayStats s = relay->stats();
  CHECK(s.frames_event == 2);
  CHECK(s.frames_req == 1);
  CHECK(s.frames_count == 1);
  CHECK(s.frames_invalid == 1);
  CHECK(s.events_stored == 1);
  CHECK(s.events_duplicate == 1);
  CHECK(s.write_batches >= 1);
  CHECK(s.ack_latency.count == 2);
  CHECK(s.sessions_open == 1);
  CHECK(s.subscriptions_open == 1);
  std::string text = prometheus_text(s);
  CHECK(text.find("relaycore_frames_total{verb=\"EVENT\"} 2\n") != std::string::npos);
  CHECK(text.find("relaycore_events_total{outcome=\"stored\"} 1\n") != std::string::npos);
  CHECK(text.find("relaycore_ack_latency_seconds_count 2\n") != std::string::npos);
  CHECK(text.find("# TYPE relaycore_ack_latency_seconds histogram") != std::string::npos);
  CHECK(text.find("relaycore_ack_latency_seconds_bucket{le=\"+Inf\"} 2\n") != std::string::npos);
  session->on_close();
  session.reset();
  CHECK(relay->stats().sessions_open == 0);
}

TEST_CASE("Stats count refusals by prefix, and stats JSON and Prometheus text show them",
          "[relay][stats]") {
  Options o;
  o.storage = new_memory_storage();
  o.limits.max_subscriptions = 1;
  auto relay = Relay::open(std::move(o)).value();
  auto conn = std::make_shared<test::RecordingConnection>();
  auto session = relay->open_session(conn, {});
  EventPtr good = test::signed_event(test::alice(), 1, now(), "good");
  EventPtr other = test::signed_event(test::alice(), 1, now(), "other");
  std::string forged(good->json());
  forged.replace(forged.find(good->sig_hex()), 128, other->sig_hex());
  session->on_message("[\"EVENT\"," + forged + "]");
  session->on_message(R"(["REQ","a",{}])");
  session->on_message(R"(["REQ","b",{}])");
  REQUIRE(conn->wait_count("[\"OK\"", 1));
  REQUIRE(conn->wait_count("[\"CLOSED\"", 1));
  RelayStats s = relay->stats();
  CHECK(s.refusals.counts[RefusalStats::slot("invalid: bad signature")] == 1);
  CHECK(s.refusals.counts[RefusalStats::slot("rate-limited: too many")] == 1);
  CHECK(s.refusals.counts.back() == 0);
  const std::string json = stats_json(s);
  CHECK(json.find("\"refusals\":{\"invalid\":1,\"pow\":0,") != std::string::npos);
  CHECK(json.find("\"rate-limited\":1,") != std::string::npos);
  CHECK(json.find("\"other\":0}") != std::string::npos);
  CHECK(json.find("\"ack_latency\":{\"count\":1,") != std::string::npos);
  const std::string text = prometheus_text(s);
  CHECK(text.find("relaycore_refusals_total{prefix=\"invalid\"} 1\n") != std::string::npos);
  CHECK(text.find("relaycore_refusals_total{prefix=\"other\"} 0\n") != std::string::npos);
}

TEST_CASE("A refusal is counted by the prefix before its colon, or as other", "[stats]") {
  CHECK(RefusalStats::kPrefixes[RefusalStats::slot("blocked: no")] == "blocked");
  CHECK(RefusalStats::kPrefixes[RefusalStats::slot("auth-required: sign in")] == "auth-required");
  CHECK(RefusalStats::kPrefixes[RefusalStats::slot("error: could not count")] == "error");
  // A prefix must be followed by its colon; anything else is "other", the last slot.
  CHECK(RefusalStats::slot("invalidity") == RefusalStats::kPrefixes.size());
  CHECK(RefusalStats::slot("bad") == RefusalStats::kPrefixes.size());
  CHECK(RefusalStats::slot("") == RefusalStats::kPrefixes.size());
}

TEST_CASE("Stats count an older version of a replaceable event as a duplicate, not a rejection",
          "[relay][stats]") {
  Options o;
  o.storage = new_memory_storage();
  auto relay = Relay::open(std::move(o)).value();
  EventPtr newer = test::signed_event(test::bob(), 0, now(), "{\"name\":\"new\"}");
  EventPtr older = test::signed_event(test::bob(), 0, now() - 60, "{\"name\":\"old\"}");
  REQUIRE(relay->submit(newer).accepted);
  OkResult ok = relay->submit(older);
  CHECK_FALSE(ok.accepted);
  CHECK(ok.message.rfind("duplicate:", 0) == 0);
  RelayStats s = relay->stats();
  CHECK(s.events_stored == 1);
  CHECK(s.events_duplicate == 1);
  CHECK(s.events_rejected == 0);
}
