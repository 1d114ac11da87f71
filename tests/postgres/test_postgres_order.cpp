// PostgreSQL history reads in NIP-01 order (created_at descending, then id ascending) from an
// index, never a Sort, so that a store where many events share one created_at answers a
// limited REQ without sorting the whole group; and the migration of version 1 databases, whose
// indexes ended at created_at, to that schema.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "conformance/conformance_support.hpp"
#include "history_shapes.hpp"
#include "postgres/pg_connection.hpp"
#include "postgres/pg_read.hpp"
#include "postgres/pg_schema.hpp"
#include "postgres_test_util.hpp"
#include "storage/storage_util.hpp"

namespace relaycore {
namespace {

using postgres::PgConnection;
using postgres::PgParams;
using postgres_test::count;
using postgres_test::exec;

// The plan of the SELECT the storage runs for `filter`, one node per line.
std::string plan_of(PgConnection& conn, const Filter& filter) {
  const storage::SqlQuery q = postgres::pg_query_sql(filter, QueryRequest());
  PgParams params;
  for (const storage::SqlParam& p : q.params) params.add(p);
  postgres::PgResult res = exec(conn, "EXPLAIN (COSTS OFF) " + q.sql, params);
  std::string plan;
  for (int row = 0; row < PQntuples(res.get()); ++row) {
    plan += std::string(postgres::get_bytes(res.get(), row, 0)) + "\n";
  }
  return plan;
}

// No shape sorts; with `check_index`, each uses the index it was built for.
void check_history_plans(PgConnection& conn, bool check_index) {
  // On test-sized tables a sort of a few hundred rows is cheaper than any index walk, so the
  // planner would sort even where an index gives the order, and the check would say nothing.
  // With sorting priced out, a plan still shows a Sort exactly when no index gives the order.
  REQUIRE(conn.run("SET enable_sort = off", "set").is_ok());
  REQUIRE(conn.run("SET enable_incremental_sort = off", "set").is_ok());
  for (const test::HistoryShape& shape : test::history_shapes()) {
    const std::string plan = plan_of(conn, shape.filter);
    INFO(shape.name << "\n" << plan);
    CHECK_THAT(plan, !Catch::Contains("Sort"));
    if (check_index) {
      CHECK_THAT(plan,
                 Catch::Contains(shape.index != nullptr ? shape.index : "tags_value_created_id"));
    }
  }
}

}  // namespace

TEST_CASE("postgres: history shapes are read in NIP-01 order from an index, never sorted",
          "[postgres]") {
  const PostgresOptions options = postgres_test::fresh_options();
  auto s = postgres_test::open_storage(options);
  // The shapes' authors, kind and tag value are a small part of the store, as on a real relay,
  // so that the planner picks each shape's own index over walking another in order.
  std::vector<EventPtr> events = test::tied_events(200, 1000);
  std::vector<Keypair> crowd;
  for (int i = 0; i < 40; ++i) crowd.push_back(Keypair::generate());
  for (int i = 0; i < 2000; ++i) {
    events.push_back(conformance::event(crowd[static_cast<std::size_t>(i % 40)], i,
                                        "crowd " + std::to_string(i), {{"t", "crowd"}},
                                        i % 2 == 0 ? 6 : 1111));
  }
  conformance::write(*s, events);
  PgConnection conn(options);
  REQUIRE(conn.run("ANALYZE", "analyze").is_ok());
  check_history_plans(conn, true);
}

TEST_CASE("postgres: a version 1 database is migrated on open with its events and order",
          "[postgres]") {
  const PostgresOptions options = postgres_test::fresh_options();
  std::vector<EventPtr> events = test::tied_events(60, 1000);
  events.push_back(conformance::event(test::alice(), 1001, "newer", {{"t", "tie"}}));
  events.push_back(conformance::event(test::bob(), 999, "older", {{"t", "tie"}}));
  EventPtr deleted = conformance::event(test::bob(), 700, "deleted");
  {
    PgConnection conn(options);
    postgres_test::create_schema(conn, 1);
    for (const EventPtr& e : events) postgres_test::store_as(conn, e, 1);
    PgParams tomb;
    tomb.add_bytes(deleted->id()).add_bytes(deleted->pubkey());
    exec(conn, "INSERT INTO deleted_ids (id, pubkey) VALUES ($1, $2)", tomb);
  }
  std::int64_t tag_rows = 0;
  for (const EventPtr& e : events) {
    tag_rows += std::count_if(e->tags().begin(), e->tags().end(), storage::is_indexed_tag);
  }

  auto s = postgres_test::open_storage(options);
  PgConnection conn(options);
  CHECK(count(conn, "SELECT version::bigint FROM relaycore_schema") == postgres::kSchemaVersion);
  CHECK(count(conn, "SELECT COUNT(*) FROM events") == static_cast<std::int64_t>(events.size()));
  CHECK(count(conn, "SELECT COUNT(*) FROM tags") == tag_rows);
  CHECK(
      count(conn, "SELECT COUNT(*) FROM tags JOIN events USING (seq) WHERE tags.id = events.id") ==
      tag_rows);
  CHECK(
      count(
          conn,
          "SELECT COUNT(*) FROM pg_indexes WHERE indexname IN ('events_pubkey_created', "
          "'events_pubkey_kind_created', 'events_kind_created', 'events_created', 'tags_pkey')") ==
      0);

  test::check_history_reads(*s, events);
  check_history_plans(conn, false);
  // The stored bytes start from the events the file held (version 4), and count on from there.
  std::uint64_t json = 0;
  for (const EventPtr& e : events) json += e->json().size();
  CHECK(s->size_bytes().value() == json);

  // Tombstones stay, tag rows still go with their event, and new events join the old in order.
  CHECK(conformance::write_one(*s, deleted).outcome == WriteOutcome::kDeleted);
  std::vector<EventId> erase = {events[1]->id()};
  REQUIRE(s->erase(erase).is_ok());
  CHECK(count(conn, "SELECT COUNT(*) FROM tags") ==
        tag_rows - static_cast<std::int64_t>(events[1]->tags().size()));
  events.erase(events.begin() + 1);
  for (int i = 0; i < 10; ++i) {
    events.push_back(
        conformance::event(test::bob(), 1000, "later " + std::to_string(i), {{"t", "tie"}}));
    conformance::write_one(*s, events.back());
  }
  Filter page = conformance::with_tag('t', {"tie"});
  page.limit = 30;
  CHECK(conformance::query_ids(*s, page) == conformance::expected_ids(events, page));
  json = 0;
  for (const EventPtr& e : events) json += e->json().size();
  CHECK(s->size_bytes().value() == json);
}

}  // namespace relaycore
