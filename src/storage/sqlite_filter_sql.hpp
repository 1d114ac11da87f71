// The shared filter→SQL builder (filter_sql.hpp) in SQLite's dialect, and binding its parameters
// to a SQLite statement.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <vector>

#include "relaycore/filter.hpp"
#include "relaycore/storage.hpp"
#include "storage/filter_sql.hpp"

namespace relaycore::storage {

// "?" placeholders, "+seq"/"+expiration" to keep the planner on the filter's indexes, and the
// relaycore_search() function the SQLite storage registers on each connection.
const SqlDialect& sqlite_dialect() noexcept;

// SELECT seq, json for one filter, in NIP-01 order, limited. Driven by the tags index
// (build_tag_select) when a tag condition has one value and there are no ids or authors.
SqlQuery build_select(const Filter& filter, const QueryRequest& request, std::uint32_t limit);

// SELECT COUNT(*) over the union of the filters (an event matching two counts once).
SqlQuery build_count(const std::vector<Filter>& filters, const QueryRequest& request);

// SELECT seq for one filter without order or limit, for counting in parts when the union has
// more parameters than SQLite accepts in one statement.
SqlQuery build_seq_select(const Filter& filter, const QueryRequest& request);

// Binds every parameter in order; returns the first SQLite error code, or SQLITE_OK. A TagValue
// of 64 lowercase hex digits is bound as its 32 bytes, the form the tags table keeps it in.
int bind_params(sqlite3_stmt* stmt, const std::vector<SqlParam>& params) noexcept;

}  // namespace relaycore::storage
