// The search index's backlog: the events the SQLite writer has stored but whose words it has not
// yet added to events_search. It adds them in batches of kSearchBacklog (sqlite_search.hpp) in
// the transaction that brings the backlog to that size, or in idle time, and moves
// stored_bytes.search_seq, the index's mark, past them in the same transaction; searches read
// the content of the events above the mark instead.
//
// The backlog lives in the writer's memory between transactions and in the file as the events
// above the mark: a writer that stops without adding it reads it back on open
// (sqlite_read_backlog).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/status.hpp"
#include "storage/sqlite_connection.hpp"

namespace relaycore::storage {

struct BacklogEvent {
  std::int64_t seq = 0;
  EventPtr event;
};

struct SearchBacklog {
  // stored_bytes.search_seq as the last commit left it.
  std::int64_t indexed_through = 0;
  // The events stored above it, in seq order, without those since removed.
  std::vector<BacklogEvent> events;
};

// The backlog as the file holds it: the mark, and the events above it whose JSON loads (one
// changed outside relaycore so that it does not is never indexed).
Result<SearchBacklog> sqlite_read_backlog(SqliteConnection& conn);

// Adds an event's words to the index, or removes them (the index is contentless: removing takes
// the words it was given). `content` is Event::content(), or for a removal the stored JSON's
// content as json_extract reads it, which is the same text.
Status index_words(SqliteConnection& conn, std::int64_t seq, std::string_view content);
Status unindex_words(SqliteConnection& conn, std::int64_t seq, std::string_view content);

// What one transaction does to the backlog: recorded as it runs, written to the index by
// index_if_due() before its COMMIT, and applied to the writer's backlog by committed() after.
// A transaction rolled back leaves the backlog as it was. A null backlog means no search index
// (SqliteOptions::search_index false): nothing is indexed, and the mark follows every commit.
class BacklogChange {
 public:
  explicit BacklogChange(SearchBacklog* backlog) : backlog_(backlog) {}

  void stored(std::int64_t seq, const EventPtr& event);
  // Records the removal of the event at `seq`; true when its words are in the index, so that
  // the caller must remove them, false when there is no index or the event is in the backlog.
  bool removed(std::int64_t seq);

  // Before COMMIT, with the last seq assigned so far: once the backlog holds kSearchBacklog
  // events, or with `now` whatever it holds, adds all their words to the index and returns the
  // new mark; nothing (and no mark) otherwise. Without a search index the mark is `last_seq`.
  Result<std::optional<std::int64_t>> index_if_due(SqliteConnection& conn, std::int64_t last_seq,
                                                   bool now = false);
  // After COMMIT.
  void committed();

 private:
  bool in_index(std::int64_t seq) const {
    return backlog_ != nullptr && seq <= backlog_->indexed_through;
  }
  bool is_removed(std::int64_t seq) const;

  SearchBacklog* backlog_;
  std::vector<BacklogEvent> stored_;
  std::vector<std::int64_t> removed_;
  std::optional<std::int64_t> mark_;
};

}  // namespace relaycore::storage
