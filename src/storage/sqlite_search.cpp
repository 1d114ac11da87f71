#include "storage/sqlite_search.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
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
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string expression = search::fts5_expression({words[i]});
    StatementScope scope(*stmt);
    bind_text(*stmt, 1, expression);
    bind_int(*stmt, 2, kWordCountSample);
    if (const int rc = sqlite3_step(*stmt); rc != SQLITE_ROW) {
      return sqlite_error("read failed", rc);
    }
    double matching = static_cast<double>(sqlite3_column_int64(*stmt, 0));
    if (matching >= static_cast<double>(kWordCountSample)) {
      const double span = documents - static_cast<double>(sqlite3_column_int64(*stmt, 1)) + 1;
      matching = std::min(documents, matching * documents / std::max(1.0, span));
    }
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

}  // namespace

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
