// SQLite history reads in NIP-01 order (created_at descending, then id ascending) straight from
// an index: the query plans of the shapes a REQ pages through never sort, so a store where many
// events share one created_at answers a limited REQ without sorting the whole group. And the
// migration of version 2 files, whose indexes ended at created_at, to that schema.
#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "../conformance/conformance_support.hpp"
#include "../conformance/temp_dir.hpp"
#include "history_shapes.hpp"
#include "sqlite_raw_db.hpp"
#include "storage/filter_sql.hpp"
#include "storage/sqlite_filter_sql.hpp"
#include "storage/sqlite_schema.hpp"
#include "storage/storage_util.hpp"

namespace relaycore {
namespace {

using conformance::event;
using conformance::TempDir;
using test::open_at;
using test::RawDb;

// The SQL the storage runs for a shape.
storage::SqlQuery sql_of(const Filter& filter) {
  return storage::build_select(filter, QueryRequest(), storage::effective_limit(filter, {}));
}

// The SQL with every one-value list "IN (?)" written as "= ?".
std::string with_equalities(std::string sql) {
  for (std::size_t at; (at = sql.find(" IN (?)")) != std::string::npos;) {
    sql.replace(at, 7, " = ?");
  }
  return sql;
}

// No shape sorts; with `check_index`, each uses the index it was built for.
void check_history_plans(RawDb& db, bool check_index) {
  for (const test::HistoryShape& shape : test::history_shapes()) {
    const storage::SqlQuery q = sql_of(shape.filter);
    const std::string plan = db.plan(q);
    INFO(shape.name << "\n" << q.sql << "\n" << plan);
    CHECK_THAT(plan, !Catch::Contains("TEMP B-TREE"));
    if (check_index) {
      CHECK_THAT(plan, Catch::Contains(shape.index != nullptr ? shape.index
                                                              : "SEARCH tags USING PRIMARY KEY"));
    }
    // A list of one value plans as the equality it is.
    CHECK(db.plan({with_equalities(q.sql), q.params, {}}) == plan);
  }
}

// Version 2 of the schema as that release created it, planner statistics included.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id BLOB NOT NULL UNIQUE,
  pubkey BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  d_tag TEXT,
  expiration INTEGER,
  json TEXT NOT NULL
);
CREATE INDEX events_pubkey_created ON events (pubkey, created_at);
CREATE INDEX events_pubkey_kind_created ON events (pubkey, kind, created_at);
CREATE INDEX events_kind_created ON events (kind, created_at);
CREATE INDEX events_created ON events (created_at);
CREATE INDEX events_slot ON events (pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
CREATE INDEX events_expiration ON events (expiration) WHERE expiration IS NOT NULL;

CREATE TABLE tags (
  seq INTEGER NOT NULL,
  name TEXT NOT NULL,
  value NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (name, value, created_at, seq)
) WITHOUT ROWID;
CREATE INDEX tags_seq ON tags (seq);

CREATE TABLE deleted_ids (
  id BLOB NOT NULL,
  pubkey BLOB NOT NULL,
  PRIMARY KEY (id, pubkey)
) WITHOUT ROWID;

CREATE TABLE deleted_addresses (
  kind INTEGER NOT NULL,
  pubkey BLOB NOT NULL,
  d TEXT NOT NULL,
  up_to INTEGER NOT NULL,
  PRIMARY KEY (kind, pubkey, d)
) WITHOUT ROWID;

PRAGMA user_version = 2;

ANALYZE sqlite_schema;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
  ('events', 'sqlite_autoindex_events_1', '1000000 1'),
  ('events', 'events_pubkey_created', '1000000 200 2'),
  ('events', 'events_pubkey_kind_created', '1000000 200 40 2'),
  ('events', 'events_kind_created', '1000000 10000 2'),
  ('events', 'events_created', '1000000 2'),
  ('events', 'events_slot', '1000000 200 40 1'),
  ('events', 'events_expiration', '1000 2'),
  ('tags', 'tags', '5000000 500000 20 20 1'),
  ('tags', 'tags_seq', '5000000 5');
)sql";

// Stores an event the way the version 2 writer did: the row, then a tags row (without the id)
// for the first value of each single-letter tag, 64-hex values as their 32 bytes.
void store_v2(RawDb& db, const EventPtr& e) {
  const std::optional<Address> address = address_of(*e);
  std::vector<storage::SqlParam> row = {&e->id(), &e->pubkey(), e->created_at(),
                                        std::int64_t{e->kind()}};
  if (address) row.emplace_back(std::string_view(address->d));
  row.emplace_back(std::string_view(e->json()));
  db.run(std::string("INSERT INTO events (id, pubkey, created_at, kind, d_tag, expiration, json) "
                     "VALUES (?, ?, ?, ?, ") +
             (address ? "?" : "NULL") + ", NULL, ?)",
         row);
  for (const Tag& tag : e->tags()) {
    if (!storage::is_indexed_tag(tag)) continue;
    db.run(
        "INSERT OR IGNORE INTO tags (seq, name, value, created_at) "
        "VALUES ((SELECT seq FROM events WHERE id = ?), ?, ?, ?)",
        {&e->id(), std::string_view(tag[0]), storage::TagValue{tag[1]}, e->created_at()});
  }
}

// A version 2 file at `path` holding `events`, and a tombstone for `deleted`.
void make_v2_file(const std::string& path, const std::vector<EventPtr>& events,
                  const EventPtr& deleted) {
  RawDb db(path);
  db.exec(kSchemaV2);
  db.exec("BEGIN");
  for (const EventPtr& e : events) store_v2(db, e);
  db.run("INSERT INTO deleted_ids (id, pubkey) VALUES (?, ?)",
         {&deleted->id(), &deleted->pubkey()});
  db.exec("COMMIT");
}

// The tags rows the events need: one per indexed tag (none of these events repeats a tag).
std::string tag_rows(const std::vector<EventPtr>& events) {
  std::size_t n = 0;
  for (const EventPtr& e : events) {
    n += static_cast<std::size_t>(
        std::count_if(e->tags().begin(), e->tags().end(), storage::is_indexed_tag));
  }
  return std::to_string(n);
}

bool has_index(RawDb& db, const std::string& name) {
  return db.text("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '" + name +
                 "'") == "1";
}

}  // namespace

TEST_CASE("sqlite: history shapes are read in NIP-01 order from an index, never sorted",
          "[storage][sqlite]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  auto s = open_at(path);
  RawDb db(path);
  SECTION("with the planner statistics of a new file") { check_history_plans(db, true); }
  SECTION("with statistics measured on a store where every event has one created_at") {
    conformance::write(*s, test::tied_events(300, 1000));
    db.exec("ANALYZE");
    check_history_plans(db, false);
  }
}

TEST_CASE("sqlite: a version 2 file is migrated on open with its events, tombstones and order",
          "[storage][sqlite]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  std::vector<EventPtr> events = test::tied_events(90, 1000);
  events.push_back(event(test::alice(), 1001, "newer", {{"t", "tie"}}));
  events.push_back(event(test::bob(), 999, "older", {{"t", "tie"}}));
  EventPtr profile = event(test::alice(), 500, "{}", {}, 0);
  events.push_back(profile);
  EventPtr deleted = event(test::bob(), 700, "deleted");
  // The newest row, stored last, is gone again, as after a deletion: its seq, still the file's
  // high-water mark, is never to be given out again.
  std::vector<EventPtr> stored = events;
  stored.push_back(event(test::bob(), 1002, "removed", {{"t", "tie"}}));
  make_v2_file(path, stored, deleted);
  std::string high;
  {
    RawDb v2(path);
    high = v2.text("SELECT seq FROM sqlite_sequence WHERE name = 'events'");
    v2.exec("DELETE FROM tags WHERE seq = " + high + "; DELETE FROM events WHERE seq = " + high);
  }

  auto s = open_at(path);
  RawDb db(path);
  CHECK(db.text("PRAGMA user_version") == std::to_string(storage::kSchemaVersion));
  CHECK(db.text("PRAGMA integrity_check") == "ok");
  CHECK(std::to_string(conformance::max_seq(*s)) == high);
  for (const char* gone : {"events_pubkey_created", "events_pubkey_kind_created",
                           "events_kind_created", "events_created"}) {
    CHECK_FALSE(has_index(db, gone));
    CHECK(db.text(std::string("SELECT COUNT(*) FROM sqlite_stat1 WHERE idx = '") + gone + "'") ==
          "0");
  }
  for (const char* kept :
       {"events_pubkey_created_id", "events_pubkey_kind_created_id", "events_kind_created_id",
        "events_created_id", "events_slot", "events_expiration"}) {
    CHECK(has_index(db, kept));
  }
  CHECK_FALSE(has_index(db, "tags_seq"));
  CHECK(db.text("SELECT COUNT(*) FROM sqlite_stat1 WHERE idx = 'events_created_id'") == "1");
  // Every tag row came along, each with its event's id.
  CHECK(db.text("SELECT COUNT(*) FROM tags JOIN events USING (seq) WHERE tags.id = events.id") ==
        db.text("SELECT COUNT(*) FROM tags"));
  CHECK(db.text("SELECT COUNT(*) FROM tags") == tag_rows(events));

  CHECK(conformance::count(*s, {Filter()}) == events.size());
  test::check_history_reads(*s, events);
  Filter mentions = conformance::with_tag('p', {to_hex(test::bob().pubkey())});  // 32-byte values
  CHECK(conformance::query_ids(*s, mentions) == conformance::expected_ids(events, mentions));
  check_history_plans(db, true);

  // The tombstone and the replaceable slot still work, and new events join the old in order.
  CHECK(conformance::write_one(*s, deleted).outcome == WriteOutcome::kDeleted);
  EventPtr newer_profile = event(test::alice(), 600, "{}", {}, 0);
  CHECK(conformance::removed_ids(conformance::write_one(*s, newer_profile)) ==
        conformance::ids_of({profile}));
  std::vector<EventPtr> more;
  for (int i = 0; i < 10; ++i)
    more.push_back(event(test::bob(), 1000, "later " + std::to_string(i)));
  conformance::write(*s, more);
  CHECK(conformance::max_seq(*s) == std::stoull(high) + 1 + more.size());
  std::vector<EventPtr> all = events;
  all.erase(std::find(all.begin(), all.end(), profile));
  all.push_back(newer_profile);
  all.insert(all.end(), more.begin(), more.end());
  Filter page = conformance::with_authors({test::bob().pubkey()});
  page.limit = 30;
  CHECK(conformance::query_ids(*s, page) == conformance::expected_ids(all, page));
  CHECK(conformance::query_ids(*s, Filter()) == conformance::expected_ids(all, Filter()));
}

TEST_CASE("sqlite: a failed migration leaves the version 2 file as it was", "[storage][sqlite]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  std::vector<EventPtr> events = test::tied_events(20, 1000);
  make_v2_file(path, events, event(test::bob(), 700, "deleted"));
  // A table in the way of the migration's rename makes it fail halfway.
  RawDb(path).exec("CREATE TABLE tags_v2 (x)");

  SqliteOptions options;
  options.path = path;
  auto opened = new_sqlite_storage(options);
  REQUIRE_FALSE(opened.is_ok());
  CHECK(opened.error().message().rfind("error: storage: cannot migrate the schema", 0) == 0);
  RawDb db(path);
  CHECK(db.text("PRAGMA user_version") == "2");
  CHECK(db.text("PRAGMA integrity_check") == "ok");
  CHECK(has_index(db, "events_created"));
  CHECK_FALSE(has_index(db, "events_created_id"));
  CHECK(db.text("SELECT COUNT(*) FROM events") == "20");
  CHECK(db.text("SELECT COUNT(*) FROM tags") == tag_rows(events));
  CHECK(db.text("SELECT COUNT(*) FROM pragma_table_info('tags') WHERE name = 'id'") == "0");

  // Once the obstacle is gone, the same file migrates.
  db.exec("DROP TABLE tags_v2");
  auto s = open_at(path);
  CHECK(conformance::query_ids(*s, Filter()) == conformance::expected_ids(events, Filter()));
}

TEST_CASE("sqlite: lists of several authors or kinds are served by merged scans that never sort",
          "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  RawDb db(dir.file("events.db"));
  const Pubkey alice = test::alice().pubkey();
  const Pubkey bob = test::bob().pubkey();
  struct Split {
    const char* name;
    Filter filter;
    std::size_t scans;
    const char* index;
  };
  Filter authors_kinds = conformance::with_kinds({1, 7});
  authors_kinds.authors = conformance::sorted(std::vector<Pubkey>{alice, bob});
  authors_kinds.limit = 100;
  Filter authors_until = conformance::with_authors({alice, bob, Pubkey{}});
  authors_until.until = 1000;
  Filter kinds_since = conformance::with_kinds({1, 7});
  kinds_since.since = 900;
  for (const Split& split : {Split{"authors x kinds", authors_kinds, 4,
                                   "events_pubkey_kind_created_id (pubkey=? AND kind=?)"},
                             Split{"authors + until", authors_until, 3,
                                   "events_pubkey_created_id (pubkey=? AND created_at<?)"},
                             Split{"kinds + since", kinds_since, 2, "events_kind_created_id"}}) {
    INFO(split.name);
    const std::vector<Filter> scans = storage::merge_scans(split.filter);
    REQUIRE(scans.size() == split.scans);
    const std::string sql = sql_of(scans.front()).sql;
    for (const Filter& scan : scans) {
      const storage::SqlQuery q = sql_of(scan);
      CHECK(q.sql == sql);  // one statement text, prepared once per scan
      const std::string plan = db.plan(q);
      INFO(plan);
      CHECK_THAT(plan, !Catch::Contains("TEMP B-TREE"));
      CHECK_THAT(plan, Catch::Contains(split.index));
    }
  }

  // One query serves the rest: one value, ids, tag conditions, or too many values.
  Filter by_ids = authors_kinds;
  by_ids.ids = std::vector<EventId>{EventId{}};
  Filter with_tags = authors_kinds;
  with_tags.tags.push_back(TagCondition{'t', {"a", "b"}});
  std::vector<std::uint16_t> many;
  for (std::size_t k = 0; k <= storage::kMaxMergeScans; ++k) {
    many.push_back(static_cast<std::uint16_t>(k));
  }
  for (const Filter& f :
       {conformance::with_authors({alice}), by_ids, with_tags, conformance::with_kinds(many)}) {
    CHECK(storage::merge_scans(f).empty());
  }
}

TEST_CASE("sqlite: a merged read returns the NIP-01 prefix and releases its snapshot",
          "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  std::vector<EventPtr> events = test::tied_events(60, 1000);
  for (int i = 0; i < 30; ++i) {
    events.push_back(event(i % 2 == 0 ? test::alice() : test::bob(), 990 + i % 20,
                           "spread " + std::to_string(i), {}, i % 3 == 0 ? 7 : 1));
  }
  conformance::write(*s, events);

  // More authors than kMaxMergeScans: one query, the same result.
  std::vector<Pubkey> authors = {test::alice().pubkey(), test::bob().pubkey()};
  for (std::size_t i = 0; i < storage::kMaxMergeScans; ++i) {
    Pubkey other{};
    other[0] = static_cast<std::uint8_t>(i);
    other[1] = static_cast<std::uint8_t>(i >> 8);
    authors.push_back(other);
  }
  Filter all_authors = conformance::with_authors(authors);
  REQUIRE(storage::merge_scans(all_authors).empty());
  Filter two_authors = conformance::with_authors({test::alice().pubkey(), test::bob().pubkey()});
  REQUIRE_FALSE(storage::merge_scans(two_authors).empty());
  for (Filter f : {all_authors, two_authors}) {
    for (std::uint32_t limit : {1u, 25u, 500u}) {
      f.limit = limit;
      CHECK(conformance::query_ids(*s, f) == conformance::expected_ids(events, f));
    }
  }

  // A visitor that stops early ends the read, and no scan keeps a snapshot open: a checkpoint
  // that must wait for every reader completes at once.
  int visited = 0;
  REQUIRE(s->query(two_authors, QueryRequest(), [&](const StoredEvent&) {
             return ++visited < 3;
           }).is_ok());
  CHECK(visited == 3);
  conformance::write_one(*s, event(test::alice(), 2000, "after"));
  RawDb db(dir.file("events.db"));
  CHECK(db.text("PRAGMA wal_checkpoint(TRUNCATE)") == "0");
}

}  // namespace relaycore

namespace relaycore {
namespace {

// A #t filter listing `n` values: t0, t1, ... and, when given, `also`.
Filter topics(std::size_t n, std::vector<std::string> also = {}) {
  std::vector<std::string> values = std::move(also);
  for (std::size_t i = 0; i < n; ++i) values.push_back("t" + std::to_string(i));
  return conformance::with_tag('t', conformance::sorted(std::move(values)));
}

}  // namespace

TEST_CASE("sqlite: a tag list of many values is served by merged tags scans that never sort",
          "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  RawDb db(dir.file("events.db"));

  // The list with the fewest values drives; nothing more selective may be present.
  Filter two_lists = topics(5);
  two_lists.tags.push_back(TagCondition{'p', {"a", "b"}});
  REQUIRE(storage::tag_merge_condition(two_lists) != nullptr);
  CHECK(storage::tag_merge_condition(two_lists)->name == 'p');
  Filter with_kinds = topics(3);
  with_kinds.kinds = std::vector<std::uint16_t>{1, 7};
  CHECK(storage::tag_merge_condition(with_kinds) != nullptr);
  Filter by_author = topics(3);
  by_author.authors = std::vector<Pubkey>{test::alice().pubkey()};
  Filter by_id = topics(3);
  by_id.ids = std::vector<EventId>{EventId{}};
  Filter searching = topics(3);
  searching.search = "word";
  Filter one_value = topics(3);
  one_value.tags.push_back(TagCondition{'p', {"a"}});
  Filter empty_list = topics(3);
  empty_list.tags.push_back(TagCondition{'p', {}});
  for (const Filter& f : {by_author, by_id, searching, one_value, empty_list, topics(1)}) {
    CHECK(storage::tag_merge_condition(f) == nullptr);
  }

  // Every scan is one statement text, read from the tags key in NIP-01 order.
  QueryRequest resumed;
  resumed.after = EventKey{1000, EventId{}};
  for (const QueryRequest& request : {QueryRequest(), resumed}) {
    const TagCondition& driver = *storage::tag_merge_condition(with_kinds);
    const storage::SqlQuery first =
        storage::build_tag_scan(with_kinds, driver, driver.values[0], request, 10);
    const storage::SqlQuery last =
        storage::build_tag_scan(with_kinds, driver, driver.values[2], request, 10);
    CHECK(first.sql == last.sql);
    const std::string plan = db.plan(first);
    INFO(first.sql << "\n" << plan);
    CHECK_THAT(plan, !Catch::Contains("TEMP B-TREE"));
    CHECK_THAT(plan, Catch::Contains("SEARCH tags USING PRIMARY KEY"));
  }
}

TEST_CASE("sqlite: a merged tag-list read returns the NIP-01 prefix, each event once",
          "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  // Ties on created_at, events carrying several of the listed values, and values with no event.
  std::vector<EventPtr> events;
  for (int i = 0; i < 120; ++i) {
    std::vector<Tag> tags = {{"t", "t" + std::to_string(i % 7)}};
    if (i % 3 == 0) tags.push_back({"t", "t" + std::to_string((i + 2) % 7)});
    if (i % 10 == 0) tags.push_back({"t", "other"});
    events.push_back(event(i % 2 == 0 ? test::alice() : test::bob(), 1000 + i % 4,
                           "e" + std::to_string(i), std::move(tags), i % 5 == 0 ? 7 : 1));
  }
  conformance::write(*s, events);
  Filter wide = topics(storage::kMaxMergeScans + 50);  // more values than statements merged
  Filter with_kind = topics(4, {"other"});
  with_kind.kinds = std::vector<std::uint16_t>{1};
  Filter with_since = topics(3);
  with_since.since = 1002;
  for (Filter f : {topics(2), topics(7), wide, with_kind, with_since}) {
    REQUIRE(storage::tag_merge_condition(f) != nullptr);
    for (std::uint32_t limit : {1u, 7u, 40u, 500u}) {
      f.limit = limit;
      INFO("values " << f.tags.front().values.size() << ", limit " << limit);
      CHECK(conformance::query_ids(*s, f) == conformance::expected_ids(events, f));
    }
  }
}

}  // namespace relaycore
