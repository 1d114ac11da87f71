// NIP-50 search ranking on SQLite. The FTS5 index (sqlite_schema.cpp, events_search) finds the
// matches and hands back the newest of them (build_select, at most kMaxRankedMatches); this
// orders them by relevance.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/search_text.hpp"
#include "relaycore/event.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"
#include "storage/sqlite_connection.hpp"

namespace relaycore::storage {

// A word found in at most this many events is counted exactly; one found in more has its count
// estimated from how recently its newest this many were stored (sqlite_search.cpp).
inline constexpr std::int64_t kWordCountSample = 1000;

// One match of a search, as ranking needs it.
struct SearchCandidate {
  std::int64_t seq = 0;
  std::int64_t created_at = 0;
  EventId id{};
  search::WordCounts counts;  // of the search's words in the content
  double score = 0;
};

// Puts `candidates`, the matches of a search for `words`, in rank order: BM25 (search::bm25)
// over their content, with each word weighed by how many events of the store hold it; equal
// scores newest first, then lowest id.
Status rank_search(SqliteConnection& conn, const std::vector<std::string>& words,
                   std::vector<SearchCandidate>& candidates);

}  // namespace relaycore::storage
