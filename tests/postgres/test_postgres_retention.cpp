// The retention rules on PostgreSQL: the same behaviours as on the built-in storages, and the
// size limit on a storage whose size does not drop when rows are deleted (until VACUUM FULL):
// one check removes about the excess it measured, not everything.
#include <catch2/catch.hpp>

#include <numeric>
#include <string>
#include <vector>

#include "postgres_test_util.hpp"
#include "unit/retention_cases.hpp"

namespace relaycore {
namespace {

std::shared_ptr<Storage> fresh() { return postgres_test::fresh_storage(); }

}  // namespace

TEST_CASE("postgres: retention: max-age removes what is older than its kinds may be",
          "[postgres][retention]") {
  retention_test::max_age_removes_old_events(fresh);
}

TEST_CASE("postgres: retention: max-per-author keeps each author's newest events",
          "[postgres][retention]") {
  retention_test::max_per_author_keeps_the_newest(fresh);
}

TEST_CASE("postgres: retention: one check frees at most the excess it measured",
          "[postgres][retention]") {
  using namespace retention_test;
  std::shared_ptr<Storage> storage = fresh();
  const std::int64_t t = test::now() - 1000;
  std::vector<EventPtr> notes;
  const std::string body(2000, 'y');
  for (int i = 0; i < 100; ++i) {
    notes.push_back(note(test::alice(), 1, t + i, {}, body + std::to_string(i)));
    conformance::write_one(*storage, notes.back());
  }
  Result<std::uint64_t> size = storage->size_bytes();
  REQUIRE(size.is_ok());
  REQUIRE(*size > 100 * 2000);
  // An excess of about ten notes' JSON.
  const std::uint64_t json = notes[0]->json().size();
  RetentionRules rules;
  rules.max_bytes = *size - 10 * json;
  rules.batch_size = 4;
  Checker checker(*storage);
  std::vector<RemovedEvent> removed = checker.check(rules, test::now());
  // The notes stored first, their JSON just reaching the excess.
  REQUIRE(removed.size() == 10);
  for (std::size_t i = 0; i < removed.size(); ++i) CHECK(removed[i].id == notes[i]->id());
  CHECK(all_by(removed, RetentionRule::kMaxBytes));
  CHECK(stored_ids(*storage).size() == 90);
}

}  // namespace relaycore
