// The retention rules, each on the memory and the SQLite storage (retention_cases.hpp), the
// size limit on both, and that SQLite serves the rules' reads from its indexes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "../conformance/conformance_support.hpp"
#include "../conformance/sqlite_factory.hpp"
#include "../conformance/temp_dir.hpp"
#include "pipeline/retention.hpp"
#include "retention_cases.hpp"
#include "sqlite_raw_db.hpp"
#include "storage/filter_sql.hpp"
#include "storage/sqlite_filter_sql.hpp"
#include "storage/sqlite_read.hpp"
#include "storage/storage_util.hpp"

namespace relaycore {
namespace {

using conformance::Factory;
using namespace retention_test;

// The storages every rule is checked on.
std::vector<std::pair<std::string, Factory>> storages() {
  return {{"memory", [] { return new_memory_storage(); }},
          {"sqlite", [] { return conformance::temp_sqlite_storage(); }}};
}

}  // namespace

TEST_CASE("retention: max-age removes what is older than its kinds may be", "[retention]") {
  for (const auto& [name, make] : storages()) {
    SECTION(name) { retention_test::max_age_removes_old_events(make); }
  }
}

TEST_CASE("retention: max-per-author keeps each author's newest events of the kinds",
          "[retention]") {
  for (const auto& [name, make] : storages()) {
    SECTION(name) { retention_test::max_per_author_keeps_the_newest(make); }
  }
}

TEST_CASE("retention: max-bytes removes the oldest regular events until under the size",
          "[retention]") {
  for (const auto& [name, make] : storages()) {
    SECTION(name) { retention_test::max_bytes_stops_at_the_limit(make); }
  }
}

TEST_CASE("retention: max-bytes never removes replaceable or addressable events", "[retention]") {
  std::shared_ptr<Storage> storage = new_memory_storage();
  const std::int64_t t = test::now() - 1000;
  EventPtr profile = note(test::alice(), 0, t);
  EventPtr article = note(test::alice(), 30023, t, {{"d", "a"}});
  EventPtr text = note(test::alice(), 1, t);
  conformance::write(*storage, {profile, article, text});
  RetentionRules rules;
  rules.max_bytes = 1;
  Checker checker(*storage);
  std::vector<RemovedEvent> removed = checker.check(rules, test::now());
  CHECK(id_set(removed) == id_set({text}));
  CHECK(stored_ids(*storage) == id_set({profile, article}));
  CHECK(checker.check(rules, test::now()).empty());
}

TEST_CASE("retention: bad rules are refused with invalid:", "[retention]") {
  CHECK(validate_retention(RetentionRules()).is_ok());
  RetentionRules backwards;
  backwards.max_age = {{{5, 1}, 10}};
  CHECK(validate_retention(backwards).message().starts_with("invalid: "));
  RetentionRules negative;
  negative.max_age = {{{1, 1}, -1}};
  CHECK_FALSE(validate_retention(negative).is_ok());
  RetentionRules no_kinds;
  no_kinds.max_per_author = {{{}, 10}};
  CHECK_FALSE(validate_retention(no_kinds).is_ok());
  RetentionRules too_many;
  too_many.max_per_author = {{{{1000, 1000 + kMaxPerAuthorKinds}}, 10}};
  CHECK_FALSE(validate_retention(too_many).is_ok());
  too_many.max_per_author = {{{{1000, 1000 + kMaxPerAuthorKinds - 1}}, 10}};
  CHECK(validate_retention(too_many).is_ok());
  RetentionRules zero_batch;
  zero_batch.batch_size = 0;
  CHECK_FALSE(validate_retention(zero_batch).is_ok());
}

TEST_CASE("retention: SQLite serves the rules' reads from indexes, without sorting",
          "[retention][sqlite]") {
  conformance::TempDir dir;
  const std::string path = dir.file("events.db");
  std::shared_ptr<Storage> storage = test::open_at(path);
  // Enough rows for the planner to weigh its indexes.
  std::vector<EventPtr> events;
  for (int i = 0; i < 200; ++i) {
    events.push_back(note(i % 2 == 0 ? test::alice() : test::bob(),
                          static_cast<std::uint16_t>(i % 5 + 1), 1000 + i));
  }
  conformance::write(*storage, events);
  test::RawDb db(path);
  db.exec("ANALYZE");

  // The statements the storage runs for a filter: one per merged scan, or one.
  auto plans_of = [&](const Filter& filter) {
    std::vector<Filter> scans = storage::merge_scans(filter);
    if (scans.empty()) scans.push_back(filter);
    std::vector<std::string> plans;
    QueryRequest request;
    request.max_limit = 300;
    for (const Filter& scan : scans) {
      plans.push_back(
          db.plan(storage::build_select(scan, request, storage::effective_limit(scan, request))));
    }
    return plans;
  };

  // A per-author rule reads keys: one statement, whatever the number of kinds.
  for (const MaxPerAuthorRule& per_author :
       {MaxPerAuthorRule{{{1, 1}}, 10}, MaxPerAuthorRule{{{1, 1}, {7, 7}}, 10},
        MaxPerAuthorRule{{{1, 1}, {7, 7}, {1000, 1000 + 200}}, 10}}) {
    QueryRequest request;
    request.max_limit = 300;
    const Filter filter = pipeline::author_filter(per_author, test::alice().pubkey());
    const std::string plan = db.plan(storage::build_key_select(
        storage::sqlite_dialect(), filter, request, storage::effective_limit(filter, request)));
    INFO(plan);
    CHECK_THAT(plan, Catch::Contains("USING") && Catch::Contains("INDEX events_pubkey_"));
    CHECK_THAT(plan, !Catch::Contains("TEMP B-TREE"));
  }
  MaxAgeRule age{{30000, 39999}, 90 * kDay};
  const std::vector<std::string> age_plans =
      plans_of(pipeline::age_filter(age, 30000, 30000 + kMaxPerAuthorKinds - 1, test::now()));
  CHECK(age_plans.size() == kMaxPerAuthorKinds);
  for (const std::string& plan : age_plans) {
    INFO(plan);
    CHECK_THAT(plan, Catch::Contains("events_kind_created_id"));
    CHECK_THAT(plan, !Catch::Contains("TEMP B-TREE"));
  }
  // Oldest first: reading on in commit order is a range of the primary key.
  const std::string scan = db.plan({std::string(storage::kScanSince), {std::int64_t{5}}, {}});
  INFO(scan);
  CHECK_THAT(scan, Catch::Contains("USING INTEGER PRIMARY KEY"));
  CHECK_THAT(scan, !Catch::Contains("TEMP B-TREE"));
}

}  // namespace relaycore
