// NIP-50 search ranking on SQLite. The FTS5 index (sqlite_schema.cpp, events_search) finds the
// matches and hands back the newest of them (build_select, at most kMaxRankedMatches); this
// orders them by relevance.
//
// The writer adds events' words to the index in batches of kSearchBacklog, not in the commit
// that stores each event: FTS5 writes every commit's words as a segment of their own, a few
// pages per commit whatever it holds, and segments are merged again later. The events stored
// since the last batch (seq above stored_bytes.search_seq) are searched by reading their
// content (relaycore_has_words), so a search finds an event as soon as it is stored.
#pragma once

#include <sqlite3.h>

#include <cstddef>
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

// How the index merges its segments. Each commit writes the words it added as a new segment, and
// a search reads every segment, so segments are merged into larger ones; FTS5 by default does
// some of that merging in every commit (automerge). Here commits never merge (automerge 0) and
// the writer merges in its idle time instead (sqlite_merge_search, through Storage::maintain).
// Without idle time a level still holds at most kCrisisMerge segments: the commit that brings a
// level to that many merges them all (FTS5's crisismerge).
inline constexpr int kCrisisMerge = 16;

// Sets the merge settings above on the index; they are kept in the file. Run on the writer when
// it opens the store, so that files made before them get them too.
Status configure_search_merging(SqliteConnection& conn);

// How many pages one merge step writes at most. A page written reads a page of each segment
// merged: 16 pages took about 6 ms of CPU merging 117 segments, less for the usual 4, so that
// events arriving meanwhile wait little for the writer.
inline constexpr int kMergePages = 16;

// One bounded merge step: merges segments on any level that holds 4 or more (FTS5's usermerge)
// or goes on with a merge already begun, writing at most kMergePages pages, in a transaction of
// its own. True when it found work to do (more may remain).
Result<bool> sqlite_merge_search(SqliteConnection& conn);

// Events stored before their words go into the index in one batch. A search reads the content of
// up to this many events besides the index; a batch's segment costs the writer about what a
// commit's did, once for this many events.
inline constexpr std::size_t kSearchBacklog = 64;

// Registers the SQL function relaycore_has_words(content, query) on `db`: 1 when the content
// (text, or NULL for none) holds every word of the NIP-50 query (search::query_words) as the
// index would find them, else 0 (search::term_frequency). Searches use it for the events not
// yet in the index.
Status register_search_function(sqlite3* db);

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
