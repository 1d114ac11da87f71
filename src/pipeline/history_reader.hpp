// HistoryReader: a REQ's stored history in NIP-01 order (newest first, then lowest id) across
// all of its filters, each filter's matches counted against its own limit, and every event
// once. It reads each filter's matches from storage in bounded chunks and merges them, so it
// can stop after any event and continue later, in another time slice, from where it was: it
// holds at most a chunk per filter, never the whole result.
//
// A NIP-50 search filter is the exception: its matches come in rank order, where a
// (created_at, id) position says nothing about what comes next, so it is read whole, at most
// its limit, in one chunk (search filters are expensive, and expensive filters are read
// whole), and merged as it comes. Its events are not in NIP-01 order, so the copies of an event
// other filters match are not all at their buffers' fronts at once; the reader remembers what
// it has sent instead.
#pragma once

#include <cstddef>
#include <deque>
#include <set>
#include <vector>

#include "relaycore/filter.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::pipeline {

class HistoryReader {
 public:
  // `filters` must outlive the reader. `request` bounds every read (max_seq, now, max_limit).
  HistoryReader(const std::vector<Filter>& filters, const QueryRequest& request);

  // The next event, reading a chunk from storage when a filter needs one; nullptr at the end.
  // The pointer stays valid until pop().
  Result<const StoredEvent*> next(Storage& storage);
  // Moves past the event next() returned (and its copies matched by other filters).
  void pop();

 private:
  struct Stream {
    const Filter* filter;
    // Events still allowed by the filter's limit, beyond those already read.
    std::uint32_t remaining = 0;
    std::deque<StoredEvent> buffer;
    // The last event read, where the next chunk starts.
    std::optional<EventKey> after;
    bool exhausted = false;
  };

  Status refill(Storage& storage, Stream& stream);

  QueryRequest request_;
  std::vector<Stream> streams_;
  // With a search filter and other filters: the ids sent so far, so none goes twice.
  bool remember_sent_ = false;
  std::set<EventId> sent_;
  Stream* head_ = nullptr;
};

}  // namespace relaycore::pipeline
