// The stores relaycore-bench-req sends REQs to: corpora generated and signed once and cached
// as JSON lines, loaded once into SQLite files, and the query targets sampled from them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bench {

// What the queries ask for, sampled from the stored events.
struct ReqTargets {
  std::vector<std::string> ids, authors, e_values, p_values;
  std::string t_value;  // the first t tag value seen
  std::int64_t first_created = 0, last_created = 0;
};

// Appends the JSON of events [begin, end) of a corpus to `out`; called from several threads.
using ChunkFn =
    std::function<void(std::size_t begin, std::size_t end, std::vector<std::string>& out)>;

// A social relay's history: `total` events over the year before yesterday, by 5,000 authors
// with a skewed share each, in the kind mix of notes, reactions, reposts, DMs and zaps.
ChunkFn spread_corpus(std::size_t total);

// Every event at one created_at (yesterday): 8 authors in turn, kind 1, one t tag "tie".
ChunkFn tied_corpus();

// Makes sure `db` holds exactly the `events` events of `cache`: signs the cache with `chunk`
// when it is missing, and loads a new store unless the file already holds them (or `reload`).
// Returns the query targets, sampled from the cache either way.
ReqTargets prepare_store(const std::string& cache, const std::string& db, std::size_t events,
                         bool reload, const ChunkFn& chunk);

}  // namespace bench
