// Shared pieces of the PostgreSQL tests: one throwaway server per test process
// (tests/servers/postgres_server.hpp) and a fresh, empty database for every storage a test asks
// for, so that test cases never see each other's events.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "postgres/pg_connection.hpp"
#include "postgres/pg_schema.hpp"
#include "relaycore/postgres.hpp"
#include "relaycore/storage.hpp"
#include "servers/postgres_server.hpp"
#include "storage/storage_util.hpp"

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

// Runs `sql` unprepared on `conn`, failing the test when it fails.
inline postgres::PgResult exec(postgres::PgConnection& conn, const std::string& sql,
                               const postgres::PgParams& params = postgres::PgParams()) {
  auto res = conn.exec(sql, params, /*prepare=*/false);
  if (!res) FAIL(sql << ": " << res.error().message());
  return std::move(res).value();
}

// The one integer `sql` returns.
inline std::int64_t count(postgres::PgConnection& conn, const std::string& sql) {
  postgres::PgResult res = exec(conn, sql);
  REQUIRE(PQntuples(res.get()) == 1);
  return postgres::get_int(res.get(), 0, 0);
}

// Makes an empty database of schema `version` (below the current one) with the migrations of
// that release, recorded as that version.
inline void create_schema(postgres::PgConnection& conn, std::int64_t version) {
  for (std::int64_t v = 0; v < version; ++v) {
    REQUIRE(conn.run(postgres::migration_sql(v), "create an older schema").is_ok());
  }
  REQUIRE(conn.run("CREATE TABLE relaycore_schema (version integer NOT NULL); "
                   "INSERT INTO relaycore_schema (version) VALUES (" +
                       std::to_string(version) + ")",
                   "record the version")
              .is_ok());
}

// Stores an event the way the writer of schema `version` did: the row (with its search words
// from version 3), then a tags row for the first value of each single-letter tag (with the
// event's id from version 2).
inline void store_as(postgres::PgConnection& conn, const EventPtr& e, std::int64_t version) {
  const std::optional<Address> address = address_of(*e);
  postgres::PgParams row;
  row.add_bytes(e->id()).add_bytes(e->pubkey()).add_int(e->created_at()).add_int(e->kind());
  if (address) {
    row.add_bytes(address->d);
  } else {
    row.add_null();
  }
  if (auto expiration = e->expiration()) {
    row.add_int(*expiration);
  } else {
    row.add_null();
  }
  row.add_text(e->json());
  const std::string words = postgres::search_document(e->content());
  if (version >= 3) row.add_text(words);
  exec(conn,
       version >= 3 ? "INSERT INTO events (id, pubkey, created_at, kind, d_tag, expiration, json, "
                      "search) VALUES ($1, $2, $3, $4, $5, $6, $7, to_tsvector('simple', $8))"
                    : "INSERT INTO events (id, pubkey, created_at, kind, d_tag, expiration, json) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7)",
       row);
  for (const Tag& tag : e->tags()) {
    if (!storage::is_indexed_tag(tag)) continue;
    postgres::PgParams t;
    t.add_bytes(e->id()).add_bytes(tag[0]).add_bytes(tag[1]);
    exec(conn,
         version >= 2 ? "INSERT INTO tags (seq, name, value, created_at, id) "
                        "SELECT seq, $2, $3, created_at, id FROM events WHERE id = $1 "
                        "ON CONFLICT DO NOTHING"
                      : "INSERT INTO tags (seq, name, value, created_at) "
                        "SELECT seq, $2, $3, created_at FROM events WHERE id = $1 "
                        "ON CONFLICT DO NOTHING",
         t);
  }
}

}  // namespace relaycore::postgres_test
