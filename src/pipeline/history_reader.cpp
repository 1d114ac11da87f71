#include "pipeline/history_reader.hpp"

#include <algorithm>
#include <cstdint>

#include "pipeline/query_cost.hpp"

namespace relaycore::pipeline {
namespace {

// A chunk stops growing once it holds this many bytes of JSON, so that a filter of large
// events does not hold a whole limit of them between slices.
constexpr std::size_t kChunkBytes = 256 * 1024;

}  // namespace

HistoryReader::HistoryReader(const std::vector<Filter>& filters, const QueryRequest& request)
    : request_(request) {
  streams_.reserve(filters.size());
  for (const Filter& f : filters) {
    Stream s;
    s.filter = &f;
    s.remaining = std::min(f.limit.value_or(request.max_limit), request.max_limit);
    s.exhausted = s.remaining == 0;
    remember_sent_ = remember_sent_ || f.search.has_value();
    streams_.push_back(std::move(s));
  }
  remember_sent_ = remember_sent_ && streams_.size() > 1;
}

Status HistoryReader::refill(Storage& storage, Stream& stream) {
  QueryRequest request = request_;
  request.after = stream.after;
  // The storage applies min(filter limit, max_limit); what is left of the limit is smaller.
  request.max_limit = stream.remaining;
  // An expensive filter's statement reads every match whatever its limit; it is read whole
  // rather than run again for each chunk. So is a search (even one with ids, which is not
  // expensive): its rank order cannot be resumed from a position.
  const bool whole = stream.filter->search.has_value() || expensive(*stream.filter, false);
  const std::size_t chunk_bytes = whole ? SIZE_MAX : kChunkBytes;
  std::size_t bytes = 0;
  std::uint32_t got = 0;
  bool stopped = false;
  Status s = storage.query(*stream.filter, request, [&](const StoredEvent& e) {
    stream.buffer.push_back(e);
    ++got;
    bytes += e.event->json().size();
    if (bytes >= chunk_bytes && got < stream.remaining) {
      stopped = true;
      return false;
    }
    return true;
  });
  if (!s) return s;
  got = std::min(got, stream.remaining);
  stream.remaining -= got;
  if (!stream.buffer.empty()) stream.after = event_key(*stream.buffer.back().event);
  // Fewer than asked for, without our stopping it: nothing more matches.
  if (stream.remaining == 0 || (!stopped && got < request.max_limit)) stream.exhausted = true;
  return Status::ok();
}

Result<const StoredEvent*> HistoryReader::next(Storage& storage) {
  head_ = nullptr;
  for (Stream& s : streams_) {
    for (;;) {
      if (s.buffer.empty() && !s.exhausted) {
        if (Status st = refill(storage, s); !st) return st;
      }
      if (s.buffer.empty() || !sent_.contains(s.buffer.front().event->id())) break;
      s.buffer.pop_front();
    }
    if (s.buffer.empty()) continue;
    if (head_ == nullptr ||
        event_key(*s.buffer.front().event) < event_key(*head_->buffer.front().event)) {
      head_ = &s;
    }
  }
  if (head_ == nullptr) return static_cast<const StoredEvent*>(nullptr);
  return &head_->buffer.front();
}

void HistoryReader::pop() {
  if (head_ == nullptr) return;
  const EventKey key = event_key(*head_->buffer.front().event);
  // An event several filters match is at the front of each of their buffers now: every event
  // before it in the order has been taken.
  for (Stream& s : streams_) {
    if (&s != head_ && !s.buffer.empty() && event_key(*s.buffer.front().event) == key) {
      s.buffer.pop_front();
    }
  }
  if (remember_sent_) sent_.insert(head_->buffer.front().event->id());
  head_->buffer.pop_front();
  head_ = nullptr;
}

}  // namespace relaycore::pipeline
