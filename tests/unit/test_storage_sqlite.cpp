// SQLite storage specifics the conformance suite cannot see: durability across reopen, file
// settings, integrity, rollback on failure, and the query plans of the hot filter shapes.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../conformance/conformance_support.hpp"
#include "../conformance/temp_dir.hpp"
#include "relaycore/hex.hpp"
#include "sqlite_raw_db.hpp"
#include "storage/sqlite_connection.hpp"
#include "storage/sqlite_filter_sql.hpp"
#include "storage/sqlite_schema.hpp"

namespace relaycore {
namespace {

using conformance::event;
using conformance::TempDir;
using test::open_at;
using test::RawDb;

// The query plan's detail lines for the SQL a filter becomes.
std::string plan_of(RawDb& db, const Filter& filter) {
  return db.plan(storage::build_select(filter, QueryRequest(), 500));
}

}  // namespace

TEST_CASE("sqlite: events, seq and tombstones survive reopen", "[storage][sqlite]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  EventPtr kept = event(test::alice(), 100, "kept", {{"t", "x"}});
  EventPtr deleted = event(test::alice(), 101, "deleted");
  EventPtr del = event(test::alice(), 102, "", {{"e", conformance::hex_id(deleted)}}, 5);
  std::uint64_t last = 0;
  {
    auto s = open_at(path);
    conformance::write(*s, {kept, deleted, del});
    last = conformance::max_seq(*s);
    std::vector<EventId> erase = {del->id()};
    REQUIRE(s->erase(erase).is_ok());  // the newest row goes; its seq must not come back
  }
  auto s = open_at(path);
  CHECK(conformance::query_ids(*s, conformance::with_tag('t', {"x"})) ==
        conformance::ids_of({kept}));
  CHECK(conformance::query(*s, Filter())[0].event->json() == kept->json());
  CHECK(conformance::max_seq(*s) == last);
  CHECK(conformance::write_one(*s, deleted).outcome == WriteOutcome::kDeleted);
  CHECK(conformance::write_one(*s, event(test::bob(), 1, "new")).seq > last);
}

TEST_CASE("sqlite: the file is in WAL mode with the relaycore schema", "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  RawDb db(dir.file("events.db"));
  CHECK(db.text("PRAGMA journal_mode") == "wal");
  CHECK(db.text("PRAGMA user_version") == std::to_string(storage::kSchemaVersion));
  std::vector<std::string> indexes =
      db.column("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'");
  for (const char* name :
       {"events_pubkey_created_id", "events_pubkey_kind_created_id", "events_kind_created_id",
        "events_created_id", "events_slot", "events_expiration"}) {
    CHECK(std::find(indexes.begin(), indexes.end(), name) != indexes.end());
  }
  // Tag rows are deleted by their keys: no index by seq costs the writer an insert per tag.
  CHECK(std::find(indexes.begin(), indexes.end(), "tags_seq") == indexes.end());
  // The seq's high-water mark is kept with the byte count, which every commit updates anyway:
  // AUTOINCREMENT's sqlite_sequence cost every insert a read and a write, and a commit a page.
  conformance::write(*s, {event(test::alice(), 100, "a"), event(test::alice(), 101, "b")});
  CHECK(db.text("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'") == "0");
  CHECK(db.text("SELECT last_seq FROM stored_bytes") == std::to_string(conformance::max_seq(*s)));
}

TEST_CASE("sqlite: hex tag values are stored as 32 bytes and still found", "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  const std::string hex(64, 'a');
  const std::string upper(64, 'A');
  EventPtr reply = event(test::alice(), 1, "reply", {{"e", hex}, {"t", "nostr"}});
  EventPtr shout = event(test::alice(), 1, "shout", {{"e", upper}});
  REQUIRE(conformance::write_one(*s, reply).outcome == WriteOutcome::kStored);
  REQUIRE(conformance::write_one(*s, shout).outcome == WriteOutcome::kStored);
  RawDb db(dir.file("events.db"));
  CHECK(db.column("SELECT typeof(value) || ':' || length(value) FROM tags ORDER BY name, 1") ==
        std::vector<std::string>{"blob:32", "text:64", "text:5"});
  // The blob and the text of the same letters are different values, as in Filter::matches.
  CHECK(conformance::query_ids(*s, conformance::with_tag('e', {hex})) ==
        conformance::ids_of({reply}));
  CHECK(conformance::query_ids(*s, conformance::with_tag('e', {upper})) ==
        conformance::ids_of({shout}));
  CHECK(conformance::count(*s, {conformance::with_tag('e', {hex, upper})}) == 2);
  // Such values are bound as blobs; a search needle of 64 hex digits still matches as text.
  EventPtr quoted = event(test::bob(), 2, "see " + hex);
  REQUIRE(conformance::write_one(*s, quoted).outcome == WriteOutcome::kStored);
  Filter search;
  search.search = hex;
  CHECK(conformance::query_ids(*s, search) == conformance::ids_of({quoted}));
}

TEST_CASE("sqlite: connections get the synchronous and cache settings", "[storage][sqlite]") {
  TempDir dir;
  for (SqliteSync sync : {SqliteSync::kFull, SqliteSync::kNormal}) {
    auto conn = storage::SqliteConnection::open(dir.file("settings.db"), false);
    REQUIRE(conn.is_ok());
    SqliteOptions options;
    options.synchronous = sync;
    options.cache_kib = 1234;
    REQUIRE(storage::configure_connection(**conn, options, true).is_ok());
    sqlite3_stmt* stmt = nullptr;
    auto pragma = [&](const char* sql) {
      REQUIRE(sqlite3_prepare_v2((*conn)->handle(), sql, -1, &stmt, nullptr) == SQLITE_OK);
      REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
      const std::int64_t value = sqlite3_column_int64(stmt, 0);
      sqlite3_finalize(stmt);
      return value;
    };
    CHECK(pragma("PRAGMA synchronous") == (sync == SqliteSync::kFull ? 2 : 1));
    CHECK(pragma("PRAGMA cache_size") == -1234);
    CHECK(pragma("PRAGMA busy_timeout") == storage::kBusyTimeoutMs);
  }
  // What the factory leaves behind: WAL, which a second handle sees.
  SqliteOptions normal;
  normal.synchronous = SqliteSync::kNormal;
  auto s = open_at(dir.file("normal.db"), normal);
  RawDb db(dir.file("normal.db"));
  CHECK(db.text("PRAGMA journal_mode") == "wal");
}

TEST_CASE("sqlite: integrity_check is ok after writes", "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  std::vector<EventPtr> events;
  for (int i = 0; i < 50; ++i) {
    events.push_back(event(i % 2 ? test::alice() : test::bob(), 1000 + i, std::to_string(i),
                           {{"t", "tag" + std::to_string(i % 5)}, {"d", std::to_string(i % 3)}},
                           static_cast<std::uint16_t>(i % 3 == 0 ? 30000 : 1)));
  }
  conformance::write(*s, events);
  conformance::write_one(
      *s, event(test::alice(), 2000, "", {{"e", conformance::hex_id(events[1])}}, 5));
  REQUIRE(s->purge_expired(5000).is_ok());
  RawDb db(dir.file("events.db"));
  CHECK(db.text("PRAGMA integrity_check") == "ok");
  CHECK(db.text("SELECT COUNT(*) FROM tags WHERE seq NOT IN (SELECT seq FROM events)") == "0");
}

// Broken by a removal that leaves tag rows behind (they would match tag filters for events
// that are gone) or deletes another event's: the rows are found by the keys the removed
// event's own tags give, hex values as their 32 bytes, a repeated tag once.
TEST_CASE("sqlite: removed and expired events take exactly their own tag rows",
          "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  const std::string hex = to_hex(test::bob().pubkey());
  auto tags_of = [&](const std::string& label) {
    return std::vector<Tag>{{"t", label}, {"t", label}, {"p", hex}, {"r", label}, {"tt", label}};
  };
  EventPtr kept = event(test::alice(), 100, "kept", tags_of("same"));
  EventPtr erased = event(test::alice(), 100, "erased", tags_of("same"));
  std::vector<Tag> expiring_tags = tags_of("same");
  expiring_tags.push_back({"expiration", "150"});
  EventPtr expiring = event(test::bob(), 100, "expiring", expiring_tags);
  EventPtr replaced = event(test::alice(), 100, "{}", tags_of("profile"), 0);
  conformance::write(*s, {kept, erased, expiring, replaced});
  RawDb db(dir.file("events.db"));
  auto rows_of = [&](const EventPtr& e) {
    return db.text("SELECT COUNT(*) FROM tags WHERE id = x'" + to_hex(e->id()) + "'");
  };
  // t (once), p and r: tt is not a single-letter tag. The expiring one has no "e"-style extra.
  CHECK(rows_of(kept) == "3");
  CHECK(rows_of(erased) == "3");
  CHECK(rows_of(expiring) == "3");

  REQUIRE(s->erase(std::vector<EventId>{erased->id()}).is_ok());
  CHECK(rows_of(erased) == "0");
  REQUIRE(s->purge_expired(200).value().size() == 1);
  CHECK(rows_of(expiring) == "0");
  conformance::write_one(*s, event(test::alice(), 200, "{}", {}, 0));
  CHECK(rows_of(replaced) == "0");

  CHECK(rows_of(kept) == "3");
  CHECK(db.text("SELECT COUNT(*) FROM tags") == "3");
  for (const Filter& f : {conformance::with_tag('t', {"same"}), conformance::with_tag('p', {hex}),
                          conformance::with_tag('r', {"same"})}) {
    CHECK(conformance::query_ids(*s, f) == conformance::ids_of({kept}));
  }
}

TEST_CASE("sqlite: a version 6 file loses the index of tags by seq on open", "[storage][sqlite]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  EventPtr a = event(test::alice(), 100, "a", {{"t", "x"}});
  EventPtr b = event(test::bob(), 101, "b", {{"t", "x"}});
  {
    auto s = open_at(path);
    conformance::write(*s, {a, b});
  }
  {
    // Version 6 is this version with tags_seq and its planner statistics.
    RawDb db(path);
    db.exec(
        "CREATE INDEX tags_seq ON tags (seq); PRAGMA user_version = 6;"
        "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('tags', 'tags_seq', '5000000 5')");
  }
  auto s = open_at(path);
  RawDb db(path);
  CHECK(db.text("PRAGMA user_version") == std::to_string(storage::kSchemaVersion));
  CHECK(db.text("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tags_seq'") == "0");
  CHECK(db.text("SELECT COUNT(*) FROM sqlite_stat1 WHERE idx = 'tags_seq'") == "0");
  CHECK(db.text("PRAGMA integrity_check") == "ok");
  REQUIRE(s->erase(std::vector<EventId>{a->id()}).is_ok());
  CHECK(conformance::query_ids(*s, conformance::with_tag('t', {"x"})) == conformance::ids_of({b}));
  CHECK(db.text("SELECT COUNT(*) FROM tags") == "1");
}

TEST_CASE("sqlite: a failed batch leaves nothing behind", "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  EventPtr before = event(test::alice(), 100, "before");
  conformance::write_one(*s, before);
  const std::uint64_t seq = conformance::max_seq(*s);
  {
    RawDb db(dir.file("events.db"));
    db.exec(
        "CREATE TRIGGER fail BEFORE INSERT ON events WHEN NEW.kind = 7777 "
        "BEGIN SELECT RAISE(ABORT, 'injected'); END");
  }
  EventPtr good = event(test::alice(), 200, "good");
  EventPtr replacing = event(test::alice(), 201, "profile", {}, 0);
  EventPtr bad = event(test::alice(), 202, "bad", {}, 7777);
  std::vector<WriteResult> results;
  Status status = s->write_batch(std::vector<EventPtr>{good, replacing, bad}, results);
  CHECK(status.code() == StatusCode::kError);
  CHECK(status.message().rfind("error: storage:", 0) == 0);
  CHECK(status.message().find("injected") == std::string::npos);  // no internals
  REQUIRE(results.size() == 3);
  for (const WriteResult& r : results) {
    CHECK(r.outcome == WriteOutcome::kRejected);
    CHECK(r.status.code() == StatusCode::kError);
    CHECK(r.seq == 0);
  }
  CHECK(conformance::query_ids(*s, Filter()) == conformance::ids_of({before}));
  CHECK(conformance::max_seq(*s) == seq);
  {
    RawDb db(dir.file("events.db"));
    db.exec("DROP TRIGGER fail");
  }
  std::vector<WriteResult> retry = conformance::write(*s, {good, bad});
  CHECK(retry[0].outcome == WriteOutcome::kStored);
  CHECK(retry[1].outcome == WriteOutcome::kStored);
}

TEST_CASE("sqlite: many readers beside a writer", "[storage][sqlite]") {
  TempDir dir;
  SqliteOptions options;
  options.readers = 2;  // fewer connections than threads: readers queue for a lease
  auto s = open_at(dir.file("events.db"), options);
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      while (!done.load()) {
        Filter f = conformance::with_tag('t', {"t" + std::to_string(t % 3)});
        Status q = s->query(f, QueryRequest(), [](const StoredEvent&) { return true; });
        auto found = s->contains(EventId{});
        if (!q.is_ok() || !found.is_ok()) ++failures;
      }
    });
  }
  for (int batch = 0; batch < 30; ++batch) {
    std::vector<EventPtr> events;
    for (int i = 0; i < 10; ++i) {
      events.push_back(event(test::alice(), 1000 + batch, std::to_string(batch * 10 + i),
                             {{"t", "t" + std::to_string(i % 3)}}));
    }
    std::vector<WriteResult> results;
    if (!s->write_batch(events, results).is_ok()) ++failures;
  }
  done = true;
  for (std::thread& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(conformance::count(*s, {Filter()}) == 300);
}

TEST_CASE("sqlite: a version 5 file gains the stored bytes of the events it holds",
          "[storage][sqlite]") {
  TempDir dir;
  const std::string path = dir.file("events.db");
  std::vector<EventPtr> events;
  std::uint64_t bytes = 0;
  for (int i = 0; i < 20; ++i) {
    events.push_back(event(test::alice(), 100 + i, "caf\u00e9 " + std::to_string(i)));
    bytes += events.back()->json().size();
  }
  {
    auto s = open_at(path);
    conformance::write(*s, events);
  }
  {
    // Version 5 is version 6 without stored_bytes (and version 6 is this one with tags_seq,
    // which a version 5 file's migration drops when it finds none).
    RawDb db(path);
    db.exec("DROP TABLE stored_bytes; PRAGMA user_version = 5");
  }
  auto s = open_at(path);
  CHECK(RawDb(path).text("PRAGMA user_version") == std::to_string(storage::kSchemaVersion));
  CHECK(s->size_bytes().value() == bytes);
  // And it is kept from there on.
  EventPtr more = event(test::bob(), 200, "more");
  conformance::write_one(*s, more);
  CHECK(s->size_bytes().value() == bytes + more->json().size());
}

TEST_CASE("sqlite: open failures are statuses", "[storage][sqlite]") {
  TempDir dir;
  SqliteOptions missing;
  missing.path = dir.file("no/such/dir/events.db");
  auto opened = new_sqlite_storage(missing);
  REQUIRE_FALSE(opened.is_ok());
  CHECK(opened.error().message().rfind("error: storage:", 0) == 0);

  // A newer schema, and version 1 (tag values as text; never deployed), are refused.
  for (const char* version : {"99", "1"}) {
    const std::string file = dir.file(std::string("v") + version + ".db");
    RawDb(file).exec(std::string("PRAGMA user_version = ") + version);
    SqliteOptions other;
    other.path = file;
    auto opened_other = new_sqlite_storage(other);
    REQUIRE_FALSE(opened_other.is_ok());
    CHECK(opened_other.error().code() == StatusCode::kError);
    CHECK_THAT(opened_other.error().message(), Catch::Contains(std::string("version ") + version));
  }
}

TEST_CASE("sqlite: hot filter shapes use their indexes", "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  RawDb db(dir.file("events.db"));
  const Pubkey alice = test::alice().pubkey();
  const Pubkey bob = test::bob().pubkey();

  // The hot author + kind + limit shape, with one author or several.
  Filter author_kind = conformance::with_kinds({1});
  author_kind.authors = std::vector<Pubkey>{alice};
  author_kind.limit = 20;
  CHECK_THAT(plan_of(db, author_kind), Catch::Contains("events_pubkey_kind_created_id"));
  Filter authors_kinds = conformance::with_kinds({1, 6});
  authors_kinds.authors = conformance::sorted(std::vector<Pubkey>{alice, bob});
  CHECK_THAT(plan_of(db, authors_kinds), Catch::Contains("events_pubkey_kind_created_id"));

  CHECK_THAT(plan_of(db, conformance::with_authors({bob})),
             Catch::Contains("events_pubkey_created_id"));
  CHECK_THAT(plan_of(db, conformance::with_kinds({1, 7})),
             Catch::Contains("events_kind_created_id"));
  CHECK_THAT(plan_of(db, Filter()), Catch::Contains("events_created_id"));
  Filter since;
  since.since = 100;
  CHECK_THAT(plan_of(db, since), Catch::Contains("events_created_id"));
  Filter by_id;
  by_id.ids = std::vector<EventId>{EventId{}};
  CHECK_THAT(plan_of(db, by_id), Catch::Contains("sqlite_autoindex_events_1"));

  // Reactions to one event: the tag index first, never a walk over every kind 7.
  Filter reactions = conformance::with_tag('e', {std::string(64, 'a')});
  reactions.kinds = std::vector<std::uint16_t>{7};
  const std::string plan = plan_of(db, reactions);
  CHECK_THAT(plan, Catch::Contains("SEARCH tags USING PRIMARY KEY"));
  CHECK_THAT(plan, !Catch::Contains("events_kind_created_id"));

  // Mentions of a popular pubkey, limit 100: the tag rows are walked in NIP-01 order and the
  // walk stops at the limit, never all of them collected first, nor sorted.
  Filter mentions = conformance::with_tag('p', {std::string(64, 'b')});
  mentions.limit = 100;
  const std::string walk = plan_of(db, mentions);
  CHECK_THAT(walk, Catch::StartsWith("SEARCH tags USING PRIMARY KEY (name=? AND value=?)"));
  CHECK_THAT(walk, !Catch::Contains("TEMP B-TREE"));
  CHECK_THAT(walk, !Catch::Contains("SUBQUERY"));
}

TEST_CASE("sqlite: a tag query stopped at its limit keeps NIP-01 order", "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  const std::string mentioned = to_hex(test::bob().pubkey());
  std::vector<EventPtr> tagged;
  std::vector<EventPtr> all;
  for (int i = 0; i < 40; ++i) {
    // Pairs share a created_at, so ties are ordered by id; every third has another kind.
    const std::uint16_t kind = i % 3 == 0 ? 7 : 1;
    EventPtr e = event(test::alice(), 1000 + i / 2, "n" + std::to_string(i),
                       {{"p", mentioned}, {"t", "x"}}, kind);
    all.push_back(e);
    if (kind == 1 && i >= 4 && i < 36) tagged.push_back(e);
    all.push_back(event(test::bob(), 1000 + i / 2, "other " + std::to_string(i), {}));
  }
  conformance::write(*s, all);
  Filter f = conformance::with_tag('p', {mentioned});
  f.kinds = std::vector<std::uint16_t>{1};
  f.since = 1002;
  f.until = 1017;
  f.limit = 7;
  std::vector<EventId> expected = conformance::newest_first(tagged);
  expected.resize(7);
  CHECK(conformance::query_ids(*s, f) == expected);
  f.limit = 500;
  CHECK(conformance::query_ids(*s, f) == conformance::newest_first(tagged));
}

TEST_CASE("sqlite: many filter shapes and very large unions", "[storage][sqlite]") {
  TempDir dir;
  auto s = open_at(dir.file("events.db"));
  std::vector<EventPtr> events;
  for (std::uint16_t k = 1; k <= 3; ++k) events.push_back(event(test::alice(), 100 + k, "", {}, k));
  conformance::write(*s, events);

  // More distinct shapes than the statement cache holds.
  for (std::uint16_t n = 1; n <= 200; ++n) {
    std::vector<std::uint16_t> kinds;
    for (std::uint16_t k = 1; k <= n; ++k) kinds.push_back(k);
    CHECK(conformance::query_ids(*s, conformance::with_kinds(kinds)).size() ==
          std::min<std::size_t>(n, 3));
  }

  // More bound values than one SQLite statement takes: counted filter by filter.
  std::vector<Filter> filters;
  for (int f = 0; f < 20; ++f) {
    std::vector<EventId> ids;
    for (int i = 0; i < 2000; ++i) {
      EventId id{};
      id[0] = static_cast<std::uint8_t>(f);
      id[1] = static_cast<std::uint8_t>(i >> 8);
      id[2] = static_cast<std::uint8_t>(i);
      id[3] = 0xff;
      ids.push_back(id);
    }
    ids.push_back(events[f % 3]->id());
    Filter filter;
    filter.ids = conformance::sorted(std::move(ids));
    filters.push_back(std::move(filter));
  }
  CHECK(conformance::count(*s, filters) == 3);
}

}  // namespace relaycore
