// Turns NIP-01 filters into SQL over the events and tags tables. Values are always bound as
// parameters, never spliced into the text, so the text depends only on the filter's shape and
// the prepared statement can be reused for the next filter of that shape.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::storage {

// One bound value. Text and blobs point into the filter, which outlives the statement's use.
using SqlParam = std::variant<std::int64_t, std::string_view, const Bytes32*>;

struct SqlQuery {
  std::string sql;
  std::vector<SqlParam> params;
};

// SELECT seq, json for one filter, in NIP-01 order, limited.
SqlQuery build_select(const Filter& filter, const QueryRequest& request, std::uint32_t limit);

// SELECT COUNT(*) over the union of the filters (an event matching two counts once).
SqlQuery build_count(const std::vector<Filter>& filters, const QueryRequest& request);

// SELECT seq for one filter without order or limit, for counting in parts when the union has
// more parameters than SQLite accepts in one statement.
SqlQuery build_seq_select(const Filter& filter, const QueryRequest& request);

// Binds every parameter in order; returns the first SQLite error code, or SQLITE_OK.
int bind_params(sqlite3_stmt* stmt, const std::vector<SqlParam>& params) noexcept;

// A max_seq that fits SQLite's signed integers (UINT64_MAX means "all").
std::int64_t clamp_seq(std::uint64_t seq) noexcept;

}  // namespace relaycore::storage
