// The PostgreSQL schema: created on first open, migrated step by step on later ones, with the
// version kept in the relaycore_schema table.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "postgres/pg_connection.hpp"
#include "relaycore/status.hpp"

namespace relaycore::postgres {

inline constexpr std::int64_t kSchemaVersion = 5;

// The DDL that takes the schema from version `from` to `from` + 1 (0 creates version 1), for
// tests that build a database of an older version. `from` must be below kSchemaVersion.
std::string_view migration_sql(std::int64_t from);

// The text events.search is made from: the content's words (protocol/search_text.hpp), joined
// by spaces, for to_tsvector('simple', ...).
std::string search_document(std::string_view content);

// Creates or migrates the schema in one transaction. Fails on a version newer than this
// library's.
Status ensure_schema(PgConnection& conn);

}  // namespace relaycore::postgres
