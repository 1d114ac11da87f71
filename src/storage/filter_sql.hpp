// Turns NIP-01 filters into SQL over the events and tags tables, for any SQL storage (SQLite and
// PostgreSQL share this). Values are always bound as parameters, never spliced into the text, so
// the text depends only on the filter's shape and a prepared statement can be reused for the next
// filter of that shape.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::storage {

// A tag value, kept apart from other text so that each storage binds it the way it stores tag
// values (SQLite keeps 64-hex values as their 32 bytes).
struct TagValue {
  std::string_view value;
};

// One bound value. Text and blobs point into the filter, which outlives the statement's use.
// Text values (tag names, tag values, search needles) are raw bytes; a storage that keeps them
// as blobs binds them as blobs.
using SqlParam = std::variant<std::int64_t, std::string_view, TagValue, const Bytes32*>;

struct SqlQuery {
  std::string sql;
  std::vector<SqlParam> params;
  // Text made for the query (a search's words as the engine's query syntax) that params point
  // into; each on the heap, so that moving the query moves none of them.
  std::vector<std::unique_ptr<const std::string>> texts;
};

// How a storage's SQL finds NIP-50 matches (the words of protocol/search_text.hpp).
enum class SqlSearch : std::uint8_t {
  // The storage tests search itself on the rows it reads; the condition is left out.
  kNone,
  // SQLite: the FTS5 table events_search, keyed by seq. The query returns the newest
  // max_ranked matches, newest first, for the caller to rank (sqlite_search.hpp).
  kFts5,
  // PostgreSQL: the tsvector column events.search; ranked by ts_rank().
  kTsvector,
};

// What differs between the SQL engines the builder serves.
struct SqlDialect {
  // "$1, $2, ..." placeholders (PostgreSQL) instead of "?" (SQLite).
  bool numbered_params = false;
  // The columns the visibility test (seq bound, NIP-40 expiration) reads. SQLite writes them as
  // "+seq" so that its planner never picks those indexes over the filter's own.
  std::string_view seq_column = "seq";
  std::string_view expiration_column = "expiration";
  SqlSearch search = SqlSearch::kNone;
  // With kFts5: a search ranks only the most recently stored this many matches (after the
  // filter's other conditions), so that a word found in most events costs a bounded amount of
  // scoring instead of scoring them all.
  std::uint32_t max_ranked = 0;
};

// The columns every query for events returns, in this order: what a storage needs to load a row
// (storage_util.hpp's load_stored_row) and where it was stored.
inline constexpr std::string_view kEventColumns = "seq, id, json";

// SELECT kEventColumns for one filter, in NIP-01 order, with LIMIT when `limit` is given.
SqlQuery build_select(const SqlDialect& dialect, const Filter& filter, const QueryRequest& request,
                      std::optional<std::uint32_t> limit);

// SELECT created_at, id for one filter in NIP-01 order, at most `limit` rows, without the
// NIP-40 expiration test: the caller drops expired events itself, so that an index of
// (created_at, id), or one ending in them, serves the query with no table lookup.
SqlQuery build_key_select(const SqlDialect& dialect, const Filter& filter,
                          const QueryRequest& request, std::uint32_t limit);

// The rows of build_select that carry `value` under the name of `driver` (one of filter.tags,
// whose own values are then not tested): the query walks that value's tags rows in NIP-01 order
// and stops at the limit, where build_select collects every event carrying the value before
// sorting (tens of thousands for a popular pubkey). For a driver of one value these are exactly
// build_select's rows. CROSS JOIN keeps the tags index as the outer loop in SQLite, so use it
// only when the filter has nothing more selective (no ids, no authors).
SqlQuery build_tag_select(const SqlDialect& dialect, const Filter& filter,
                          const TagCondition& driver, std::string_view value,
                          const QueryRequest& request, std::optional<std::uint32_t> limit);

// The tag condition to drive a query of `filter` with (build_tag_select): the first with
// exactly one value, when the filter has no ids or authors; nullptr otherwise.
const TagCondition* tag_driver(const Filter& filter) noexcept;

// SELECT kEventColumns for a filter with a search. kTsvector: in rank order, best match first, then
// NIP-01 order among equal scores, with the limit applied after ranking. kFts5: seq,
// created_at, id and content of the newest max_ranked matches, newest first, without the limit,
// for the caller to rank and limit. A search with no words matches nothing.
SqlQuery build_search_select(const SqlDialect& dialect, const Filter& filter,
                             const QueryRequest& request, std::optional<std::uint32_t> limit);

// SELECT kEventColumns for one filter: build_search_select for a search (when the dialect has a
// search engine), else in NIP-01 order, build_tag_select when the filter has a tag_driver,
// build_select otherwise.
SqlQuery build_query(const SqlDialect& dialect, const Filter& filter, const QueryRequest& request,
                     std::optional<std::uint32_t> limit);

// SELECT COUNT(*) over the union of the filters (an event matching two counts once).
SqlQuery build_count(const SqlDialect& dialect, const std::vector<Filter>& filters,
                     const QueryRequest& request);

// SELECT seq (or kEventColumns, with `with_json`) for one filter without order or limit, for
// counting in parts when the union has more parameters than one statement accepts, or when the
// storage tests search itself.
SqlQuery build_seq_select(const SqlDialect& dialect, const Filter& filter,
                          const QueryRequest& request, bool with_json = false);

// A max_seq that fits SQL's signed 64-bit integers (UINT64_MAX means "all").
std::int64_t clamp_seq(std::uint64_t seq) noexcept;

}  // namespace relaycore::storage
