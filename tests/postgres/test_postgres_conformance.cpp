// The storage conformance suite, unchanged, against the PostgreSQL storage: every case on a
// database of its own.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "conformance/storage_conformance.hpp"
#include "postgres_test_util.hpp"

RELAYCORE_STORAGE_CONFORMANCE(postgres, relaycore::postgres_test::fresh_storage())
RELAYCORE_STORAGE_SEARCH_CONFORMANCE(postgres)

// Not a test: ctest runs it first (the fixture "postgres: initdb template") so that every other
// test process copies one initdb'd data directory instead of running initdb itself.
TEST_CASE("postgres: initdb template", "[.][template]") {
  const char* to = std::getenv("RELAYCORE_PG_TEMPLATE_OUT");
  REQUIRE(to != nullptr);
  relaycore::test_servers::PostgresServer pg;
  if (!pg.make_template(to)) FAIL(pg.error());
}
