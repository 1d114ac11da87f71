// The shared filter→SQL builder (filter_sql.hpp) in SQLite's dialect, and binding its parameters
// to a SQLite statement.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "relaycore/filter.hpp"
#include "relaycore/storage.hpp"
#include "storage/filter_sql.hpp"

namespace relaycore::storage {

// A search ranks at most this many matches, the most recently stored (SqlDialect::max_ranked):
// ranking reads each match's row and content (about 5 us each, most of a search's time), and a
// common word matches most of a store.
inline constexpr std::uint32_t kMaxRankedMatches = 1000;

// "?" placeholders, "+seq"/"+expiration" to keep the planner on the filter's indexes, and the
// FTS5 table events_search for NIP-50, ranking at most kMaxRankedMatches.
const SqlDialect& sqlite_dialect() noexcept;

// SELECT kEventColumns for one filter, in NIP-01 order, limited. Driven by the tags index
// (build_tag_select) when a tag condition has one value and there are no ids or authors. For a
// search, the newest kMaxRankedMatches matches instead (seq, created_at, id, content), for
// rank_search (sqlite_search.hpp).
SqlQuery build_select(const Filter& filter, const QueryRequest& request, std::uint32_t limit);

// At most this many scans serve one filter by merging; each is a statement of its own.
inline constexpr std::size_t kMaxMergeScans = 256;

// The filters whose ordered scans, merged, serve `filter`: one per author, per kind, or per
// (author, kind) pair, when the filter has a list of several authors or kinds and no ids or
// tag conditions or search (ids and tag values find few rows, which one query sorts cheaply; a
// search is served in rank order, not NIP-01 order). Each scan
// is a one-value shape, read from its index in NIP-01 order and stopped at the limit, so the
// merge reads about limit + scans rows. One query over the whole list reads up to `limit` rows
// per value and sorts them, or, for several authors and no kinds, every event of every author
// (SQLite then walks the author + kind index). Empty when the filter is served by one query.
std::vector<Filter> merge_scans(const Filter& filter);

// The tag condition whose values, one ordered tags-index scan each and merged, serve `filter`:
// the one with the fewest values, when some tag condition lists several values and the filter
// has no ids, authors, search or tag condition of one value (those find or drive their rows
// cheaply). One query over a list of many values reads every event carrying any of them and
// sorts them all before the first row; the merge reads about limit + values rows, in order.
// nullptr when one query serves the filter.
const TagCondition* tag_merge_condition(const Filter& filter) noexcept;

// SELECT kEventColumns for the rows of `filter` carrying `value` under `driver`'s name, in NIP-01
// order, limited: one scan of the merge tag_merge_condition() chooses. The text is the same
// for every value, so one prepared statement serves all the scans.
SqlQuery build_tag_scan(const Filter& filter, const TagCondition& driver, std::string_view value,
                        const QueryRequest& request, std::uint32_t limit);

// SELECT COUNT(*) over the union of the filters (an event matching two counts once).
SqlQuery build_count(const std::vector<Filter>& filters, const QueryRequest& request);

// SELECT seq for one filter without order or limit, for counting in parts when the union has
// more parameters than SQLite accepts in one statement.
SqlQuery build_seq_select(const Filter& filter, const QueryRequest& request);

// Binds every parameter in order; returns the first SQLite error code, or SQLITE_OK. A TagValue
// of 64 lowercase hex digits is bound as its 32 bytes, the form the tags table keeps it in.
int bind_params(sqlite3_stmt* stmt, const std::vector<SqlParam>& params) noexcept;

}  // namespace relaycore::storage
