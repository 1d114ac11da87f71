// The retention rules on PostgreSQL: the same behaviours as on the built-in storages, the size
// limit included (its measure is kept by triggers, since the tables shrink only with VACUUM
// FULL).
#include <catch2/catch.hpp>

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

TEST_CASE("postgres: retention: max-bytes stops at the limit, and removes nothing more",
          "[postgres][retention]") {
  retention_test::max_bytes_stops_at_the_limit(fresh);
}

}  // namespace relaycore
