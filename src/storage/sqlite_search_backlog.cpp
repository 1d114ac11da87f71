#include "storage/sqlite_search_backlog.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "storage/sqlite_search.hpp"
#include "storage/storage_util.hpp"

namespace relaycore::storage {
namespace {

constexpr std::string_view kMark = "SELECT search_seq FROM stored_bytes";
constexpr std::string_view kAboveMark =
    "SELECT seq, id, json FROM events WHERE seq > (SELECT search_seq FROM stored_bytes) "
    "ORDER BY seq";
// The search index (sqlite_schema.cpp, events_search) is told an event's words to add and, being
// contentless, the same words again to remove. Single-row VALUES statements: an INSERT ... SELECT
// into it would run in a statement transaction and make FTS5 write out its pending words.
constexpr std::string_view kSearchAdd =
    "INSERT INTO events_search (rowid, content) VALUES (?1, ?2)";
constexpr std::string_view kSearchRemove =
    "INSERT INTO events_search (events_search, rowid, content) VALUES ('delete', ?1, ?2)";

Status run_words(SqliteConnection& conn, std::string_view sql, std::int64_t seq,
                 std::string_view content) {
  auto stmt = conn.prepare(sql);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  bind_int(*stmt, 1, seq);
  bind_text(*stmt, 2, content);
  if (const int rc = sqlite3_step(*stmt); rc != SQLITE_DONE) {
    return sqlite_error("write failed", rc);
  }
  return Status::ok();
}

}  // namespace

Status index_words(SqliteConnection& conn, std::int64_t seq, std::string_view content) {
  return run_words(conn, kSearchAdd, seq, content);
}

Status unindex_words(SqliteConnection& conn, std::int64_t seq, std::string_view content) {
  return run_words(conn, kSearchRemove, seq, content);
}

Result<SearchBacklog> sqlite_read_backlog(SqliteConnection& conn) {
  SearchBacklog backlog;
  {
    auto stmt = conn.prepare(kMark);
    if (!stmt) return std::move(stmt).error();
    StatementScope scope(*stmt);
    if (const int rc = sqlite3_step(*stmt); rc != SQLITE_ROW) {
      return sqlite_error("cannot read the search index's mark",
                          rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
    }
    backlog.indexed_through = sqlite3_column_int64(*stmt, 0);
  }
  auto stmt = conn.prepare(kAboveMark);
  if (!stmt) return std::move(stmt).error();
  StatementScope scope(*stmt);
  int rc;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    EventId id;
    column_bytes(*stmt, 1, id);
    Result<EventPtr> event = load_stored_row(std::string(column_text(*stmt, 2)), id);
    if (!event) continue;
    backlog.events.push_back({sqlite3_column_int64(*stmt, 0), std::move(event).value()});
  }
  if (rc != SQLITE_DONE) return sqlite_error("cannot read the search index's backlog", rc);
  return backlog;
}

void BacklogChange::stored(std::int64_t seq, const EventPtr& event) {
  if (backlog_ != nullptr) stored_.push_back({seq, event});
}

bool BacklogChange::removed(std::int64_t seq) {
  if (in_index(seq)) return true;
  if (backlog_ != nullptr) removed_.push_back(seq);
  return false;
}

bool BacklogChange::is_removed(std::int64_t seq) const {
  return std::find(removed_.begin(), removed_.end(), seq) != removed_.end();
}

Result<std::optional<std::int64_t>> BacklogChange::index_if_due(SqliteConnection& conn,
                                                                std::int64_t last_seq, bool now) {
  if (backlog_ == nullptr) {
    mark_ = last_seq;
    return mark_;
  }
  const std::size_t held = backlog_->events.size() + stored_.size();
  if (held == 0 || (!now && held < kSearchBacklog + removed_.size())) return mark_;
  for (const std::vector<BacklogEvent>* part : {&backlog_->events, &stored_}) {
    for (const BacklogEvent& e : *part) {
      if (is_removed(e.seq)) continue;
      if (Status s = index_words(conn, e.seq, e.event->content()); !s) return s;
    }
  }
  mark_ = last_seq;
  return mark_;
}

void BacklogChange::committed() {
  if (backlog_ == nullptr) return;
  if (mark_) {
    backlog_->indexed_through = *mark_;
    backlog_->events.clear();
    return;
  }
  std::vector<BacklogEvent>& events = backlog_->events;
  if (!removed_.empty()) {
    std::erase_if(events, [&](const BacklogEvent& e) { return is_removed(e.seq); });
    std::erase_if(stored_, [&](const BacklogEvent& e) { return is_removed(e.seq); });
  }
  events.insert(events.end(), std::make_move_iterator(stored_.begin()),
                std::make_move_iterator(stored_.end()));
}

}  // namespace relaycore::storage
