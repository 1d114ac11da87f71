// A Relay on the PostgreSQL storage, used as a host would: submit, then EVENT and REQ through a
// session. Also the schema's life across opens.
#include <catch2/catch.hpp>

#include "conformance/conformance_support.hpp"
#include "postgres_test_util.hpp"
#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"

namespace relaycore {

TEST_CASE("postgres: a relay stores through it and serves REQ and COUNT from it",
          "[postgres][relay]") {
  Options o;
  o.storage = postgres_test::fresh_storage();
  auto relay = Relay::open(std::move(o)).value();
  EventPtr submitted = test::signed_event(test::alice(), 1, test::now(), "by submit");
  OkResult ok = relay->submit(submitted);
  CHECK(ok.accepted);

  auto conn = std::make_shared<test::RecordingConnection>();
  auto session = relay->open_session(conn, {});
  EventPtr sent = test::signed_event(test::bob(), 1, test::now() + 1, "by session");
  session->on_message("[\"EVENT\"," + std::string(sent->json()) + "]");
  REQUIRE(conn->wait_count("[\"OK\"", 1));
  CHECK(conn->frames()[0] == "[\"OK\",\"" + std::string(sent->id_hex()) + "\",true,\"\"]");

  session->on_message(R"(["REQ","r",{"kinds":[1]}])");
  REQUIRE(conn->wait_count("[\"EOSE\"", 1));
  std::vector<std::string> frames = conn->frames();
  REQUIRE(frames.size() == 4);
  CHECK(frames[1] == "[\"EVENT\",\"r\"," + std::string(sent->json()) + "]");
  CHECK(frames[2] == "[\"EVENT\",\"r\"," + std::string(submitted->json()) + "]");
  CHECK(frames[3] == "[\"EOSE\",\"r\"]");

  session->on_message(R"(["COUNT","c",{"kinds":[1]}])");
  REQUIRE(conn->wait_count("[\"COUNT\"", 1));
  CHECK(conn->frames().back() == R"(["COUNT","c",{"count":2}])");
  CHECK(relay->shutdown().message() == "");
}

TEST_CASE("postgres: a reopened database keeps events, seqs and tombstones", "[postgres]") {
  const PostgresOptions options = postgres_test::fresh_options();
  EventPtr kept = conformance::event(test::alice(), 100, "kept", {{"t", "x"}});
  EventPtr deleted = conformance::event(test::alice(), 101, "deleted");
  EventPtr del =
      conformance::event(test::alice(), 102, "", {{"e", conformance::hex_id(deleted)}}, 5);
  std::uint64_t last = 0;
  {
    auto s = postgres_test::open_storage(options);
    conformance::write(*s, {kept, deleted, del});
    last = conformance::max_seq(*s);
  }
  auto s = postgres_test::open_storage(options);  // the schema exists: opened, not recreated
  CHECK(conformance::query_ids(*s, conformance::with_tag('t', {"x"})) ==
        conformance::ids_of({kept}));
  CHECK(conformance::max_seq(*s) == last);
  CHECK(conformance::write_one(*s, deleted).outcome == WriteOutcome::kDeleted);
  CHECK(conformance::write_one(*s, conformance::event(test::bob(), 1, "new")).seq > last);
}

TEST_CASE("postgres: a database with a newer schema version is refused", "[postgres]") {
  const PostgresOptions options = postgres_test::fresh_options();
  postgres_test::open_storage(options);
  test_servers::PostgresServer& pg = postgres_test::server();
  const std::string db = options.conninfo.substr(options.conninfo.rfind('=') + 1);
  REQUIRE(pg.psql("UPDATE relaycore_schema SET version = 99", db));
  auto opened = new_postgres_storage(options);
  REQUIRE_FALSE(opened);
  CHECK(opened.error().message() ==
        "error: storage: the database has an unknown schema version 99");
}

TEST_CASE("postgres: tag values and d tags may hold NUL and other bytes text cannot",
          "[postgres]") {
  auto s = postgres_test::fresh_storage();
  const std::string nul("a\0b", 3);
  EventPtr tagged = conformance::event(test::alice(), 100, "nul", {{"t", nul}});
  EventPtr addressed = conformance::event(test::alice(), 101, "", {{"d", nul}}, 30000);
  conformance::write(*s, {tagged, addressed});
  CHECK(conformance::query_ids(*s, conformance::with_tag('t', {nul})) ==
        conformance::ids_of({tagged}));
  CHECK(conformance::query_ids(*s, conformance::with_tag('t', {"a"})).empty());
  CHECK(conformance::query_ids(*s, conformance::with_tag('d', {nul})) ==
        conformance::ids_of({addressed}));
}

TEST_CASE("postgres: a read stopped early leaves its connection fit for the next one",
          "[postgres]") {
  // One read connection, so every query below runs on the connection the early stops used.
  auto s = postgres_test::open_storage(postgres_test::fresh_options(/*pool_size=*/1));
  std::vector<EventPtr> events;
  for (int i = 0; i < 60; ++i) {
    events.push_back(conformance::event(test::alice(), 1000 + i, "match " + std::to_string(i)));
  }
  conformance::write(*s, events);
  for (int round = 0; round < 5; ++round) {
    // A search is limited by counting matches as they stream in, then the rest is cancelled.
    Filter search;
    search.search = "MATCH";
    search.limit = 3;
    CHECK(conformance::query_ids(*s, search) ==
          conformance::ids_of({events[59], events[58], events[57]}));
    // A visitor that stops after one event.
    int visited = 0;
    REQUIRE(s->scan_since(0, [&](const StoredEvent&) { return ++visited < 1; }).is_ok());
    CHECK(visited == 1);
    CHECK(conformance::count(*s, {Filter()}) == 60);
  }
}

}  // namespace relaycore
