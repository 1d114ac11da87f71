// The SQLite search index as a file holds it: built for the events of an older file when it is
// opened, kept by the writer's transaction, consistent by FTS5's own integrity check, and empty
// again once every event is gone; and the SQLite ranking's use of how rare each word is.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../conformance/conformance_search.hpp"
#include "../conformance/temp_dir.hpp"
#include "sqlite_raw_db.hpp"
#include "storage/sqlite_filter_sql.hpp"
#include "storage/sqlite_schema.hpp"
#include "storage/sqlite_search.hpp"

namespace relaycore {
namespace {

using conformance::event;
using conformance::with_search;

class LinesLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view message) override {
    std::lock_guard lock(mu_);
    lines_.emplace_back(message);
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// FTS5's check of its index against itself.
void check_index(test::RawDb& db) {
  db.exec("INSERT INTO events_search (events_search) VALUES ('integrity-check')");
}

// The words the index holds for at least one event. A contentless index removes exactly the
// words it is told to, so words left here after their events are gone were removed wrongly.
std::vector<std::string> indexed_words(test::RawDb& db) {
  db.exec(
      "CREATE VIRTUAL TABLE IF NOT EXISTS temp.words USING fts5vocab(main, events_search, row)");
  return db.column("SELECT term FROM temp.words WHERE doc > 0");
}

// Version 4's search index: word positions and counts, written by triggers.
constexpr const char* kSearchV4 = R"sql(
DROP TABLE events_search;
CREATE VIRTUAL TABLE events_search USING fts5(
  content, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO events_search (rowid, content) SELECT seq, json_extract(json, '$.content') FROM events;
CREATE TRIGGER events_search_insert AFTER INSERT ON events BEGIN
  INSERT INTO events_search (rowid, content) VALUES (new.seq, json_extract(new.json, '$.content'));
END;
CREATE TRIGGER events_search_delete AFTER DELETE ON events BEGIN
  INSERT INTO events_search (events_search, rowid, content)
    VALUES ('delete', old.seq, json_extract(old.json, '$.content'));
END;
PRAGMA user_version = 4;
)sql";

}  // namespace

// Broken by a migration that skips the index, builds it for only some events, or writes no
// progress; or by triggers that leave old words behind.
TEST_CASE("sqlite: a version 3 file gets the search index on open, with progress in the log",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  std::vector<EventPtr> events;
  for (int i = 0; i < 50; ++i) {
    events.push_back(event(test::alice(), 1000 + i,
                           "old note " + std::to_string(i) + (i % 10 == 0 ? " rare" : " common")));
  }
  {
    auto s = test::open_at(path);
    conformance::write(*s, events);
  }
  {
    // Version 3 is version 5 without the search table.
    test::RawDb db(path);
    db.exec("DROP TABLE events_search; PRAGMA user_version = 3");
  }
  auto logger = std::make_shared<LinesLogger>();
  SqliteOptions options;
  options.logger = logger;
  auto s = test::open_at(path, options);
  test::RawDb db(path);
  CHECK(db.text("PRAGMA user_version") == std::to_string(storage::kSchemaVersion));
  check_index(db);
  const std::vector<std::string> lines = logger->lines();
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "storage: building the search index over 50 events");
  CHECK(lines[1] == "storage: search index: events up to seq 50 of 50 indexed");
  CHECK(lines[2] == "storage: search index built");

  CHECK(conformance::count(*s, {with_search("note")}) == 50);
  CHECK(conformance::query_ids(*s, with_search("rare")) ==
        conformance::newest_first({events[0], events[10], events[20], events[30], events[40]}));
  // Old and new events alike leave the index with their rows.
  const std::vector<EventId> erase = {events[10]->id()};
  REQUIRE(s->erase(erase).is_ok());
  conformance::write(*s, {event(test::alice(), 2000, "new rare note")});
  CHECK(conformance::count(*s, {with_search("rare")}) == 5);
  check_index(db);

  // A file already at this version opens without logging a migration.
  auto quiet = std::make_shared<LinesLogger>();
  SqliteOptions again;
  again.logger = quiet;
  s.reset();
  test::open_at(path, again);
  CHECK(quiet->lines().empty());
}

// Broken by a migration that keeps version 4's index or its triggers (whose statement
// transactions made every stored event a segment of its own), or loses events on the way.
TEST_CASE("sqlite: a version 4 file gets the new search index on open, without triggers",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  std::vector<EventPtr> events;
  for (int i = 0; i < 30; ++i) {
    events.push_back(event(test::alice(), 1000 + i, i % 3 == 0 ? "lightning wallet" : "wallet"));
  }
  {
    auto s = test::open_at(path);
    conformance::write(*s, events);
  }
  test::RawDb(path).exec(kSearchV4);
  auto logger = std::make_shared<LinesLogger>();
  SqliteOptions options;
  options.logger = logger;
  auto s = test::open_at(path, options);
  test::RawDb db(path);
  CHECK(db.text("PRAGMA user_version") == std::to_string(storage::kSchemaVersion));
  CHECK(db.column("SELECT name FROM sqlite_master WHERE type = 'trigger'").empty());
  CHECK_THAT(db.text("SELECT sql FROM sqlite_master WHERE name = 'events_search'"),
             Catch::Contains("detail = none"));
  check_index(db);
  const std::vector<std::string> lines = logger->lines();
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "storage: building the search index over 30 events");
  CHECK(lines[2] == "storage: search index built");
  CHECK(conformance::count(*s, {with_search("wallet")}) == 30);
  CHECK(conformance::count(*s, {with_search("lightning")}) == 10);
  REQUIRE(s->erase(std::vector<EventId>{events[0]->id()}).is_ok());
  CHECK(conformance::count(*s, {with_search("lightning")}) == 9);
}

// Runs maintain() until it has nothing left to do; the number of steps that found work.
int maintain_fully(Storage& s) {
  int steps = 0;
  for (;;) {
    Result<bool> more = s.maintain();
    REQUIRE(more.is_ok());
    if (!*more) return steps;
    ++steps;
    REQUIRE(steps < 1000);
  }
}

// Broken when the words removed with an event differ from those added with it (the writer
// indexes the parsed content and removes the stored JSON's content), when some way of removing
// an event leaves its words behind, or when removing an event still in the backlog takes words
// out of the index (FTS5 then fails or corrupts its index: the words were never added).
TEST_CASE("sqlite: every way of removing events takes all their words out of the index",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  auto s = test::open_at(path);
  // Content that JSON escapes, folds or decomposes.
  const std::string odd = "Caf\u00e9 \"quoted\"\nline\ttab back\\slash \x01 ctl Ünïcödé 漢字 🎉 x";
  for (const bool in_index : {true, false}) {
    INFO((in_index ? "removed from the index" : "removed from the backlog"));
    const std::int64_t t = in_index ? 100 : 300;
    EventPtr replaced = event(test::bob(), t, "profile " + odd, {}, 0);
    EventPtr deleted = event(test::alice(), t + 1, "deleted " + odd);
    EventPtr expiring = event(test::alice(), t + 2, "expiring " + odd, {{"expiration", "1000"}});
    EventPtr erased = event(test::alice(), t + 3, "erased " + odd);
    conformance::write(*s, {replaced, deleted, expiring, erased});
    test::RawDb db(path);
    if (in_index) {
      maintain_fully(*s);
      CHECK(indexed_words(db).size() > 10);
    } else {
      CHECK(indexed_words(db).empty());
    }
    CHECK(conformance::count(*s, {with_search("quoted")}) == 4);

    conformance::write(*s, {event(test::bob(), t + 50, "", {}, 0)});  // replaces the profile
    conformance::write(
        *s, {event(test::alice(), t + 51, "", {{"e", conformance::hex_id(deleted)}}, 5)});
    REQUIRE(s->purge_expired(1000).is_ok());
    REQUIRE(s->erase(std::vector<EventId>{erased->id()}).is_ok());
    CHECK(conformance::count(*s, {with_search("quoted")}) == 0);
    CHECK(indexed_words(db).empty());
    check_index(db);
    // The removed events are not added with the rest of the backlog.
    maintain_fully(*s);
    CHECK(indexed_words(db).empty());
    check_index(db);
  }
}

// Broken by a writer that adds each commit's words to the index as it stores them (a segment,
// and merges, per commit of a few events), or per event (a trigger, or an INSERT ... SELECT into
// the index, runs in a statement transaction, and FTS5 writes out at each one), or that never
// adds them; or by searches that miss the events not yet added.
TEST_CASE("sqlite: events' words reach the index kSearchBacklog at a time, in one write",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  auto s = test::open_at(path);
  test::RawDb db(path);
  std::vector<EventPtr> events;
  for (std::size_t i = 0; i < storage::kSearchBacklog; ++i) {
    events.push_back(event(test::alice(), 1000 + static_cast<std::int64_t>(i),
                           "note number " + std::to_string(i)));
  }
  // Commits of three until the last, which brings the backlog to kSearchBacklog.
  for (std::size_t at = 0; at + 1 < events.size(); at += 3) {
    const std::size_t end = std::min(at + 3, events.size() - 1);
    conformance::write(*s,
                       std::vector<EventPtr>(events.begin() + static_cast<std::ptrdiff_t>(at),
                                             events.begin() + static_cast<std::ptrdiff_t>(end)));
    CHECK(test::search_structure(db).segments == 0);
    CHECK(conformance::count(*s, {with_search("note")}) == end);
    CHECK(conformance::query_ids(*s, with_search("number 0")) == conformance::ids_of({events[0]}));
  }
  CHECK(db.text("SELECT search_seq FROM stored_bytes") == "0");
  conformance::write(*s, {events.back()});
  CHECK(test::search_structure(db).segments == 1);
  CHECK(db.text("SELECT search_seq FROM stored_bytes") ==
        db.text("SELECT last_seq FROM stored_bytes"));
  CHECK(indexed_words(db).size() == storage::kSearchBacklog + 2);
  CHECK(conformance::count(*s, {with_search("note")}) == storage::kSearchBacklog);
  conformance::write(*s, events);  // all duplicates: nothing to index
  CHECK(test::search_structure(db).segments == 1);
  check_index(db);
}

// Broken by commits that merge the index's segments themselves (FTS5's automerge: the work
// maintain() exists to take out of the writer's commits), by a maintain() that does not merge,
// or by merges that lose words or bring back those of removed events.
TEST_CASE("sqlite: commits leave the search index's segments to maintain(), which merges them",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  auto s = test::open_at(path);
  // Twelve commits of a backlog's worth each: a segment each. Batch i's first event holds
  // "first", the others "later"; all hold "shared" and "word<i>".
  constexpr int kBatches = 12;
  const auto per_batch = static_cast<int>(storage::kSearchBacklog);
  std::vector<EventPtr> events;
  for (int i = 0; i < kBatches; ++i) {
    std::vector<EventPtr> batch;
    for (int j = 0; j < per_batch; ++j) {
      batch.push_back(event(test::alice(), 1000 + per_batch * i + j,
                            "shared word" + std::to_string(i) + (j == 0 ? " first" : " later")));
    }
    conformance::write(*s, batch);
    events.insert(events.end(), batch.begin(), batch.end());
  }
  test::RawDb db(path);
  CHECK(test::search_structure(db).segments == kBatches);

  // Removed before the merge: the merge must apply the removal, not undo it.
  const std::vector<EventId> erased = {events[0]->id(), events[per_batch]->id()};
  REQUIRE(s->erase(erased).is_ok());
  CHECK(maintain_fully(*s) > 0);
  const test::SearchStructure merged = test::search_structure(db);
  CHECK(merged.segments < 4);
  for (std::uint64_t n : merged.levels) CHECK(n < 4);
  check_index(db);
  CHECK_FALSE(s->maintain().value());

  CHECK(conformance::count(*s, {with_search("shared")}) == kBatches * per_batch - 2);
  std::vector<EventPtr> first;
  for (int i = 2; i < kBatches; ++i)
    first.push_back(events[static_cast<std::size_t>(per_batch * i)]);
  CHECK(conformance::query_ids(*s, with_search("first")) == conformance::newest_first(first));
  CHECK(conformance::count(*s, {with_search("word0")}) == per_batch - 1);
  const std::vector<std::string> words = indexed_words(db);
  CHECK(std::find(words.begin(), words.end(), "word0") != words.end());

  // And removals after the merge: the rest of batch 0.
  std::vector<EventId> rest;
  for (int j = 1; j < per_batch; ++j) rest.push_back(events[static_cast<std::size_t>(j)]->id());
  REQUIRE(s->erase(rest).is_ok());
  maintain_fully(*s);
  CHECK(conformance::count(*s, {with_search("word0")}) == 0);
  const std::vector<std::string> after = indexed_words(db);
  CHECK(std::find(after.begin(), after.end(), "word0") == after.end());
  check_index(db);
}

// Broken by a merge step that leaves the index unreadable or short of words while its merge is
// only part done (a step stops after kMergePages pages, wherever it is).
TEST_CASE("sqlite: searches find the same events at every step of a merge", "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  auto s = test::open_at(path);
  constexpr int kBatches = 6, kPerBatch = 500, kWords = 20;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<EventPtr> batch;
    for (int i = 0; i < kPerBatch; ++i) {
      const int n = b * kPerBatch + i;
      std::string content = "everywhere";
      for (int w = 0; w < kWords; ++w) content += " word" + std::to_string(n * kWords + w);
      batch.push_back(event(test::alice(), 1000 + n, content));
    }
    conformance::write(*s, batch);
  }
  test::RawDb db(path);
  REQUIRE(test::search_structure(db).segments == kBatches);
  bool saw_partial = false;
  for (int step = 0;; ++step) {
    REQUIRE(step < 1000);
    Result<bool> more = s->maintain();
    REQUIRE(more.is_ok());
    if (!*more) break;
    saw_partial = saw_partial || test::search_structure(db).merging > 0;
    CHECK(conformance::count(*s, {with_search("everywhere")}) == kBatches * kPerBatch);
    CHECK(conformance::count(*s, {with_search("word0")}) == 1);
    CHECK(conformance::count(*s, {with_search("word59999")}) == 1);
    CHECK(conformance::count(*s, {with_search("word30000 word30019")}) == 1);
  }
  CHECK(saw_partial);
  CHECK(test::search_structure(db).segments < 4);
  check_index(db);
}

// Broken by turning merges off in commits without a bound: a writer that never has idle time
// would then leave a segment per backlog written, and every search would read them all.
TEST_CASE("sqlite: without maintain(), each level of the search index stays under a bound",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  auto s = test::open_at(path);
  test::RawDb db(path);
  const auto per_batch = static_cast<int>(storage::kSearchBacklog);
  constexpr int kBatches = 3 * storage::kCrisisMerge;
  for (int i = 0; i < kBatches; ++i) {
    std::vector<EventPtr> batch;
    for (int j = 0; j < per_batch; ++j) {
      const int n = i * per_batch + j;
      batch.push_back(event(test::alice(), 1000 + n, "steady load " + std::to_string(n)));
    }
    conformance::write(*s, batch);
    const test::SearchStructure now = test::search_structure(db);
    for (std::uint64_t n : now.levels) REQUIRE(n < storage::kCrisisMerge);
  }
  CHECK(test::search_structure(db).segments < 2 * storage::kCrisisMerge);
  CHECK(conformance::count(*s, {with_search("steady load")}) == kBatches * per_batch);
  CHECK(conformance::query_ids(*s, with_search("42")).size() == 1);
  check_index(db);
}

// Broken by ranking that ignores how rare each word is (plain occurrence counts, or bm25 with
// equal weights), which would put the newer `common_twice` first.
TEST_CASE("sqlite: a rarer word weighs more in the ranking", "[storage][sqlite]") {
  conformance::TempDir dir;
  auto s = test::open_at(dir.file("events.db"));
  std::vector<EventPtr> events;
  for (int i = 0; i < 40; ++i) {
    events.push_back(event(test::alice(), 100 + i, "common filler words " + std::to_string(i)));
  }
  EventPtr rare_twice = event(test::bob(), 200, "rare rare common filler words");
  EventPtr common_twice = event(test::bob(), 201, "rare common common filler words");
  events.push_back(rare_twice);
  events.push_back(common_twice);
  conformance::write(*s, events);
  CHECK(conformance::query_ids(*s, with_search("common rare")) ==
        conformance::ids_of({rare_twice, common_twice}));
  CHECK(conformance::query_ids(*s, with_search("rare common")) ==
        conformance::ids_of({rare_twice, common_twice}));
  // One word: more occurrences rank first, whatever the word's rarity.
  CHECK(conformance::query_ids(*s, with_search("common")).front() == common_twice->id());
  // The same once the events are in the index rather than its backlog.
  REQUIRE(s->maintain().is_ok());
  test::RawDb db(dir.file("events.db"));
  CHECK(test::search_structure(db).segments == 1);
  CHECK(conformance::query_ids(*s, with_search("common rare")) ==
        conformance::ids_of({rare_twice, common_twice}));
  CHECK(conformance::query_ids(*s, with_search("common")).front() == common_twice->id());
}

// Broken by a writer that forgets its backlog when it stops without adding it (a crash): those
// events would never be found by the index once a later batch moves the mark past them.
TEST_CASE("sqlite: a backlog a crash leaves behind is added after the next open",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  const std::string copy = dir.file("copy.db");
  auto s = test::open_at(path);
  std::vector<EventPtr> events;
  for (int i = 0; i < 10; ++i) {
    events.push_back(event(test::alice(), 1000 + i, "crash word" + std::to_string(i)));
  }
  conformance::write(*s, events);
  // The files as a crash leaves them: copied while the store is open.
  std::filesystem::copy_file(path, copy);
  std::filesystem::copy_file(path + "-wal", copy + "-wal");
  s.reset();

  auto reopened = test::open_at(copy);
  test::RawDb db(copy);
  CHECK(indexed_words(db).empty());
  CHECK(conformance::count(*reopened, {with_search("crash")}) == 10);
  maintain_fully(*reopened);
  CHECK(db.text("SELECT search_seq FROM stored_bytes") ==
        db.text("SELECT last_seq FROM stored_bytes"));
  const std::vector<std::string> words = indexed_words(db);
  CHECK(std::find(words.begin(), words.end(), "word9") != words.end());
  CHECK(conformance::count(*reopened, {with_search("crash")}) == 10);
  check_index(db);
}

// Broken by a close that leaves the backlog to the next open: a file copied or opened by other
// tools after a clean shutdown should have every event in its index.
TEST_CASE("sqlite: closing the store adds its search backlog to the index", "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  {
    auto s = test::open_at(path);
    conformance::write(*s, {event(test::alice(), 100, "closing words")});
  }
  test::RawDb db(path);
  CHECK(db.text("SELECT search_seq FROM stored_bytes") == "1");
  const std::vector<std::string> words = indexed_words(db);
  CHECK(std::find(words.begin(), words.end(), "closing") != words.end());
  check_index(db);
}

// Broken by a migration that leaves a version 8 file without the index's mark, or with a mark
// below its events (whose words a version 8 writer added as it stored them): removing them would
// then leave their words behind, and adding them again would count them twice.
TEST_CASE("sqlite: a version 8 file gets the search index's mark on open", "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  EventPtr old_one = event(test::alice(), 100, "older words");
  EventPtr old_two = event(test::alice(), 101, "older words again");
  {
    auto s = test::open_at(path);
    conformance::write(*s, {old_one, old_two});
  }
  {
    // Version 8 is this version without stored_bytes.search_seq.
    test::RawDb db(path);
    db.exec("ALTER TABLE stored_bytes DROP COLUMN search_seq; PRAGMA user_version = 8");
  }
  auto s = test::open_at(path);
  test::RawDb db(path);
  CHECK(db.text("PRAGMA user_version") == std::to_string(storage::kSchemaVersion));
  CHECK(db.text("SELECT search_seq FROM stored_bytes") == "2");
  conformance::write(*s, {event(test::alice(), 102, "newer words")});
  REQUIRE(s->erase(std::vector<EventId>{old_one->id()}).is_ok());
  CHECK(conformance::count(*s, {with_search("words")}) == 2);
  CHECK(conformance::count(*s, {with_search("older")}) == 1);
  maintain_fully(*s);
  check_index(db);
  CHECK(conformance::count(*s, {with_search("words")}) == 2);
}

// Broken if search_index = false still writes the index (the benchmark's baseline would then
// include it), or if true does not.
TEST_CASE("sqlite: search_index = false stores events without indexing their words",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  SqliteOptions off;
  off.search_index = false;
  {
    auto s = test::open_at(path, off);
    conformance::write(*s, {event(test::alice(), 100, "unindexed words")});
    CHECK(conformance::count(*s, {Filter{}}) == 1);
    CHECK(conformance::count(*s, {with_search("unindexed")}) == 0);
  }
  auto s = test::open_at(path);
  conformance::write(*s, {event(test::alice(), 101, "indexed words")});
  CHECK(conformance::count(*s, {with_search("words")}) == 1);
}

// Broken by a query for the events not yet in the index that SQLite may serve from another index
// of events (a search with kinds or authors walking all of that kind's or author's events and
// reading each one's content), or by a COUNT whose search makes SQLite walk such an index
// instead of looking the matches up by seq.
TEST_CASE("sqlite: a search reads the events not yet in the index by seq, whatever the filter",
          "[storage][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  auto s = test::open_at(path);
  conformance::write(*s, {event(test::alice(), 100, "planned words")});
  test::RawDb db(path);
  REQUIRE(storage::register_search_function(db.handle()));
  Filter by_kind = with_search("planned");
  by_kind.kinds = std::vector<std::uint16_t>{1};
  Filter by_author = by_kind;
  by_author.authors = std::vector<Pubkey>{test::alice().pubkey()};
  Filter tagged = with_search("planned");
  tagged.tags.push_back({'t', {"x"}});
  Filter since = with_search("planned");
  since.since = 50;
  // True when every read of events in `plan` is by seq (a range, or a match looked up).
  auto by_seq_only = [](const std::string& plan) {
    for (std::size_t at = 0; (at = plan.find(" events USING ", at)) != std::string::npos; ++at) {
      if (plan.compare(at, 34, " events USING INTEGER PRIMARY KEY ") != 0) return false;
    }
    return plan.find("SCAN events\n") == std::string::npos;
  };
  for (const Filter& f : {with_search("planned"), by_kind, by_author, tagged, since}) {
    const storage::SqlQuery select = storage::build_select(f, QueryRequest(), 100);
    const std::string select_plan = db.plan(select);
    INFO(select.sql << "\n" << select_plan);
    CHECK(by_seq_only(select_plan));
    // A COUNT may find the filter's rows by an author's index, as without a search, but the
    // matches are one list looked up by seq, never a walk of a kind's or of every event.
    const storage::SqlQuery count = storage::build_count({f}, QueryRequest());
    const std::string count_plan = db.plan(count);
    INFO(count.sql << "\n" << count_plan);
    CHECK_THAT(count_plan, Catch::Contains("SEARCH events USING INTEGER PRIMARY KEY (rowid>?)"));
    CHECK_THAT(count_plan, !Catch::Contains("events_kind_created_id") &&
                               !Catch::Contains("events_created_id") &&
                               !Catch::Contains("SCAN events\n"));
  }
  CHECK(conformance::count(*s, {by_kind}) == 1);
  CHECK(conformance::query_ids(*s, by_author).size() == 1);
}

}  // namespace relaycore
