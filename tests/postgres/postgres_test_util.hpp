// Shared pieces of the PostgreSQL tests: one throwaway server per test process
// (tests/servers/postgres_server.hpp) and a fresh, empty database for every storage a test asks
// for, so that test cases never see each other's events.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "relaycore/postgres.hpp"
#include "relaycore/storage.hpp"
#include "servers/postgres_server.hpp"

namespace relaycore::postgres_test {

// The process's server, started on first use. A server that cannot start fails the test with
// the reason; a missing PostgreSQL installation is such a failure too, since the install step
// provides it.
inline test_servers::PostgresServer& server() {
  static test_servers::PostgresServer pg;
  if (!pg.running() && !pg.start()) FAIL("cannot start PostgreSQL: " << pg.error());
  return pg;
}

// Options for a new empty database on the process's server.
inline PostgresOptions fresh_options(std::uint32_t pool_size = 3) {
  test_servers::PostgresServer& pg = server();
  auto db = pg.create_database();
  if (!db) FAIL(pg.error());
  PostgresOptions options;
  options.conninfo = pg.conninfo(*db);
  options.pool_size = pool_size;
  return options;
}

inline std::shared_ptr<Storage> open_storage(const PostgresOptions& options) {
  auto opened = new_postgres_storage(options);
  if (!opened) FAIL(opened.error().message());
  return *opened;
}

// A storage on a new empty database, for the conformance suite.
inline std::shared_ptr<Storage> fresh_storage() { return open_storage(fresh_options()); }

}  // namespace relaycore::postgres_test
