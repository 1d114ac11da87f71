#include "storage/sqlite_search.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/search_text.hpp"
#include "storage/sqlite_read.hpp"
#include "storage/storage_util.hpp"

namespace relaycore::storage {
namespace {

// The number of events holding a word, from its newest kWordCountSample matches in the index:
// their count when there are fewer, else the sample scaled by the share of the store's seqs
// (newest first) it took to find them. One short read of the word's doclist, whatever its size;
// FTS5's bm25() instead read the whole doclist of every word on every search (20 ms for a word
// in 84% of a million events).
constexpr std::string_view kWordSample =
    "SELECT count(*), min(rowid) FROM (SELECT rowid FROM events_search WHERE "
    "events_search MATCH ?1 ORDER BY rowid DESC LIMIT ?2)";
// The events holding a word among those not yet in the index (sqlite_search_backlog.hpp).
constexpr std::string_view kWordInBacklog =
    "SELECT count(*) FROM events NOT INDEXED WHERE seq > (SELECT search_seq FROM stored_bytes) AND "
    "relaycore_has_words(CASE WHEN json_valid(json) THEN json_extract(json, '$.content') END, "
    "?1)";

// Each word's weight (search::word_weight) in the store, whose size is taken to be the highest
// seq assigned (events since removed included).
Result<std::vector<double>> word_weights(SqliteConnection& conn,
                                         const std::vector<std::string>& words) {
  std::vector<double> weights(words.size(), 1.0);
  // One word's weight scales every score alike and changes no order.
  if (words.size() < 2) return weights;
  auto high = sqlite_max_seq(conn);
  if (!high) return std::move(high).error();
  const auto documents = static_cast<double>(*high);
  auto stmt = conn.prepare(kWordSample);
  if (!stmt) return std::move(stmt).error();
  auto backlog = conn.prepare(kWordInBacklog);
  if (!backlog) return std::move(backlog).error();
  for (std::size_t i = 0; i < words.size(); ++i) {
    double matching = 0;
    {
      StatementScope scope(*backlog);
      bind_text(*backlog, 1, words[i]);
      if (const int rc = sqlite3_step(*backlog); rc != SQLITE_ROW) {
        return sqlite_error("read failed", rc);
      }
      matching = static_cast<double>(sqlite3_column_int64(*backlog, 0));
    }
    const std::string expression = search::fts5_expression({words[i]});
    StatementScope scope(*stmt);
    bind_text(*stmt, 1, expression);
    bind_int(*stmt, 2, kWordCountSample);
    if (const int rc = sqlite3_step(*stmt); rc != SQLITE_ROW) {
      return sqlite_error("read failed", rc);
    }
    double indexed = static_cast<double>(sqlite3_column_int64(*stmt, 0));
    if (indexed >= static_cast<double>(kWordCountSample)) {
      const double span = documents - static_cast<double>(sqlite3_column_int64(*stmt, 1)) + 1;
      indexed = indexed * documents / std::max(1.0, span);
    }
    matching = std::min(documents, matching + indexed);
    weights[i] = search::word_weight(documents, matching);
  }
  return weights;
}

// FTS5's commands, written as inserts into the table's own column.
constexpr const char* kMergeSettings =
    "INSERT INTO events_search (events_search, rank) VALUES ('automerge', 0);"
    "INSERT INTO events_search (events_search, rank) VALUES ('crisismerge', {});";
constexpr std::string_view kMerge =
    "INSERT INTO events_search (events_search, rank) VALUES ('merge', ?1)";

// relaycore_has_words(content, query). The query's words are taken once per statement and kept
// with it (sqlite3_set_auxdata).
void has_words(sqlite3_context* ctx, int, sqlite3_value** args) {
  using Words = std::vector<std::string>;
  auto* words = static_cast<Words*>(sqlite3_get_auxdata(ctx, 1));
  if (words == nullptr) {
    const auto* query = reinterpret_cast<const char*>(sqlite3_value_text(args[1]));
    auto taken = std::make_unique<Words>(search::query_words(query == nullptr ? "" : query));
    words = taken.get();
    sqlite3_set_auxdata(ctx, 1, taken.release(), [](void* p) { delete static_cast<Words*>(p); });
    // SQLite may drop the auxdata at once (out of memory): it then frees `words`.
    if (sqlite3_get_auxdata(ctx, 1) != words) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
  }
  const auto* content = reinterpret_cast<const char*>(sqlite3_value_text(args[0]));
  const std::string_view text =
      content == nullptr
          ? std::string_view()
          : std::string_view(content, static_cast<std::size_t>(sqlite3_value_bytes(args[0])));
  sqlite3_result_int(ctx, search::term_frequency(*words, text) > 0 ? 1 : 0);
}

}  // namespace

Status register_search_function(sqlite3* db) {
  const int rc =
      sqlite3_create_function_v2(db, "relaycore_has_words", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                 nullptr, has_words, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error("cannot register the search function", rc);
  return Status::ok();
}

Status configure_search_merging(SqliteConnection& conn) {
  const std::string sql = fmt::format(kMergeSettings, kCrisisMerge);
  return conn.exec(sql.c_str(), "cannot configure the search index");
}

Result<bool> sqlite_merge_search(SqliteConnection& conn) {
  auto stmt = conn.prepare(kMerge);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  bind_int(*stmt, 1, kMergePages);
  // FTS5 reports no result; a step that merged changed rows of the index's data table, one
  // that found nothing to merge changed at most the structure record.
  const int before = sqlite3_total_changes(conn.handle());
  if (const int rc = sqlite3_step(*stmt); rc != SQLITE_DONE) {
    return sqlite_error("merging the search index failed", rc);
  }
  return sqlite3_total_changes(conn.handle()) - before >= 2;
}

Status rank_search(SqliteConnection& conn, const std::vector<std::string>& words,
                   std::vector<SearchCandidate>& candidates) {
  if (candidates.empty()) return Status::ok();
  auto weights = word_weights(conn, words);
  if (!weights) return std::move(weights).error();
  std::vector<search::WordCounts> counts;
  counts.reserve(candidates.size());
  for (SearchCandidate& c : candidates) counts.push_back(std::move(c.counts));
  const std::vector<double> scores = search::bm25(counts, *weights);
  for (std::size_t i = 0; i < candidates.size(); ++i) candidates[i].score = scores[i];
  std::sort(candidates.begin(), candidates.end(),
            [](const SearchCandidate& a, const SearchCandidate& b) {
              if (a.score != b.score) return a.score > b.score;
              if (a.created_at != b.created_at) return a.created_at > b.created_at;
              return a.id < b.id;
            });
  return Status::ok();
}

}  // namespace relaycore::storage
