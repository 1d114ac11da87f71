// The SQLite search index as a file holds it: built for the events of an older file when it is
// opened, kept by the writer's transaction, and consistent by FTS5's own integrity check.
#include <catch2/catch.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../conformance/conformance_search.hpp"
#include "../conformance/temp_dir.hpp"
#include "sqlite_raw_db.hpp"
#include "storage/sqlite_schema.hpp"

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

// FTS5's check of its index against itself; a contentless table's index holds exactly what the
// triggers inserted and deleted, so a wrong delete shows here.
void check_index(test::RawDb& db) {
  db.exec("INSERT INTO events_search (events_search) VALUES ('integrity-check')");
}

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
    // Version 3 is version 4 without the search table and its triggers.
    test::RawDb db(path);
    db.exec(
        "DROP TRIGGER events_search_insert; DROP TRIGGER events_search_delete; "
        "DROP TABLE events_search; PRAGMA user_version = 3");
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

}  // namespace relaycore
