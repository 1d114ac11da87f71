// The tags rows of removed events. tags has no foreign key or index by seq (schema 5): every way
// of removing an event deletes its tag rows by the keys its own tags give, so a removal that
// leaves rows behind (they would hold the key of an event stored again later) or deletes
// another event's (its tag queries would miss it) shows here; and the migration of version 4
// databases, which had both.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "conformance/conformance_support.hpp"
#include "postgres/pg_connection.hpp"
#include "postgres/pg_schema.hpp"
#include "postgres/pg_write.hpp"
#include "postgres_test_util.hpp"
#include "relaycore/hex.hpp"

namespace relaycore {
namespace {

using conformance::event;
using conformance::ids_of;
using conformance::query_ids;
using conformance::with_tag;
using postgres::PgConnection;
using postgres::PgParams;
using postgres_test::count;

// The tags rows that carry the id of `e`.
std::int64_t rows_of(PgConnection& conn, const EventPtr& e) {
  PgParams p;
  p.add_bytes(e->id());
  postgres::PgResult res = postgres_test::exec(conn, "SELECT COUNT(*) FROM tags WHERE id = $1", p);
  return postgres::get_int(res.get(), 0, 0);
}

// The foreign keys of tags and its index by seq, which schema 5 dropped.
std::int64_t seq_links(PgConnection& conn) {
  return count(conn,
               "SELECT (SELECT COUNT(*) FROM pg_constraint WHERE conrelid = 'tags'::regclass "
               "AND contype = 'f') + (SELECT COUNT(*) FROM pg_indexes WHERE indexname = "
               "'tags_seq')");
}

// What removing `e` by id as the storage does reads of tags, in a transaction that is rolled
// back: the tag rows read by a scan of the whole table, and the rows of `e` left.
struct TagReads {
  std::int64_t scanned = 0;
  std::int64_t left = 0;
};

TagReads remove_and_roll_back(PgConnection& conn, const EventPtr& e) {
  REQUIRE(conn.begin().is_ok());
  PgParams p;
  p.add_bytes(e->id());
  postgres::PgResult removed = postgres_test::exec(conn, postgres::removal_sql("id = $1"), p);
  REQUIRE(PQntuples(removed.get()) == 1);
  TagReads reads;
  reads.scanned =
      count(conn, "SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'tags'");
  reads.left = rows_of(conn, e);
  REQUIRE(conn.rollback().is_ok());
  return reads;
}

}  // namespace

// Broken by a removal that leaves tag rows behind or deletes another event's: the rows are
// found by the keys the removed event's own tags give, values as their bytes (a hex value as
// its 64 characters), a repeated tag once; a value holding NUL, which the server cannot read
// from the JSON, by the event's seq.
TEST_CASE("postgres: removed, deleted and expired events take exactly their own tag rows",
          "[postgres]") {
  const PostgresOptions options = postgres_test::fresh_options();
  auto s = postgres_test::open_storage(options);
  const std::string hex = to_hex(test::bob().pubkey());
  auto tags_of = [&](const std::string& label) {
    return std::vector<Tag>{{"t", label}, {"t", label}, {"p", hex}, {"r", label}, {"tt", label}};
  };
  EventPtr kept = event(test::alice(), 100, "kept", tags_of("same"));
  EventPtr erased = event(test::alice(), 100, "erased", tags_of("same"));
  std::vector<Tag> nul_tags = tags_of("same");
  nul_tags.push_back({"n", std::string("a\0b", 3)});
  EventPtr erased_nul = event(test::alice(), 100, "erased with NUL", nul_tags);
  std::vector<Tag> expiring_tags = tags_of("same");
  expiring_tags.push_back({"expiration", "150"});
  EventPtr expiring = event(test::bob(), 100, "expiring", expiring_tags);
  EventPtr replaced = event(test::alice(), 100, "{}", tags_of("profile"), 0);
  EventPtr deleted = event(test::alice(), 100, "deleted", tags_of("same"));
  conformance::write(*s, {kept, erased, erased_nul, expiring, replaced, deleted});
  PgConnection conn(options);
  // t (once), p and r: tt is not a single-letter tag.
  for (const EventPtr& e : {kept, erased, expiring, replaced, deleted}) {
    CHECK(rows_of(conn, e) == 3);
  }
  CHECK(rows_of(conn, erased_nul) == 4);

  REQUIRE(s->erase(std::vector<EventId>{erased->id(), erased_nul->id()}).value().size() == 2);
  CHECK(rows_of(conn, erased) == 0);
  CHECK(rows_of(conn, erased_nul) == 0);
  REQUIRE(s->purge_expired(200).value().size() == 1);
  CHECK(rows_of(conn, expiring) == 0);
  CHECK(conformance::write_one(*s, event(test::alice(), 200, "{}", {}, 0)).outcome ==
        WriteOutcome::kReplaced);
  CHECK(rows_of(conn, replaced) == 0);
  EventPtr deletion = event(test::alice(), 200, "", {{"e", conformance::hex_id(deleted)}}, 5);
  CHECK(conformance::removed_ids(conformance::write_one(*s, deletion)) == ids_of({deleted}));
  CHECK(rows_of(conn, deleted) == 0);

  CHECK(rows_of(conn, kept) == 3);
  CHECK(rows_of(conn, deletion) == 1);
  CHECK(count(conn, "SELECT COUNT(*) FROM tags") == 4);
  for (const Filter& f : {with_tag('t', {"same"}), with_tag('p', {hex}), with_tag('r', {"same"})}) {
    CHECK(query_ids(*s, f) == ids_of({kept}));
  }
  CHECK(query_ids(*s, with_tag('e', {conformance::hex_id(deleted)})) == ids_of({deletion}));
}

// Broken by a migration that keeps the foreign key or the index, that loses rows, or after
// which removals leave the old rows behind.
TEST_CASE("postgres: a version 4 database loses tags' foreign key and index by seq on open",
          "[postgres]") {
  const PostgresOptions options = postgres_test::fresh_options();
  const std::string hex = to_hex(test::bob().pubkey());
  EventPtr a = event(test::alice(), 100, "a", {{"t", "x"}, {"p", hex}});
  EventPtr b = event(test::bob(), 101, "b", {{"t", "x"}, {"p", hex}});
  EventPtr c = event(test::bob(), 102, "c", {{"t", "x"}, {"expiration", "150"}});
  {
    PgConnection conn(options);
    postgres_test::create_schema(conn, 4);
    for (const EventPtr& e : {a, b, c}) postgres_test::store_as(conn, e, 4);
    REQUIRE(seq_links(conn) == 2);
  }
  auto s = postgres_test::open_storage(options);
  PgConnection conn(options);
  CHECK(count(conn, "SELECT version::bigint FROM relaycore_schema") == postgres::kSchemaVersion);
  CHECK(seq_links(conn) == 0);
  CHECK(count(conn, "SELECT COUNT(*) FROM events") == 3);
  CHECK(count(conn, "SELECT COUNT(*) FROM tags") == 5);
  CHECK(query_ids(*s, with_tag('p', {hex})) == conformance::newest_first({a, b}));

  REQUIRE(s->erase(std::vector<EventId>{a->id()}).value().size() == 1);
  REQUIRE(s->purge_expired(200).value().size() == 1);
  CHECK(rows_of(conn, a) == 0);
  CHECK(rows_of(conn, c) == 0);
  CHECK(rows_of(conn, b) == 2);
  CHECK(count(conn, "SELECT COUNT(*) FROM tags") == 2);
  CHECK(query_ids(*s, with_tag('t', {"x"})) == ids_of({b}));
}

// Broken by a removal that reads all of tags (its rows are found by seq) when every removed
// event's JSON gives its keys, or that leaves the rows of one whose JSON does not. The store is
// large enough for the planner to scan tags when a statement lets it.
TEST_CASE("postgres: a removal finds tag rows by key, and scans tags only for an unreadable row",
          "[postgres]") {
  const PostgresOptions options = postgres_test::fresh_options();
  auto s = postgres_test::open_storage(options);
  std::vector<EventPtr> events;
  for (int i = 0; i < 2000; ++i) {
    events.push_back(event(test::alice(), i, "e" + std::to_string(i),
                           {{"t", "x"}, {"p", to_hex(test::bob().pubkey())}}));
  }
  conformance::write(*s, events);
  PgConnection conn(options);
  REQUIRE(conn.run("ANALYZE", "analyze").is_ok());

  TagReads reads = remove_and_roll_back(conn, events[7]);
  CHECK(reads.left == 0);
  CHECK(reads.scanned == 0);

  PgParams p;
  p.add_bytes(events[8]->id());
  postgres_test::exec(conn, "UPDATE events SET json = 'not json' WHERE id = $1", p);
  reads = remove_and_roll_back(conn, events[8]);
  CHECK(reads.left == 0);
  CHECK(reads.scanned > 0);
  CHECK(count(conn, "SELECT COUNT(*) FROM tags") == 4000);
}

}  // namespace relaycore
