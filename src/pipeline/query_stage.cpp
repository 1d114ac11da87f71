// Query stage: serves REQ history and COUNT from storage on a pool of reader threads, in time
// slices that the QueryScheduler hands out fairly across sessions. History is bounded by the
// commit sequence the subscription went live at, so nothing is both in the history and
// delivered live, and nothing falls between the two.
#include "pipeline/history_reader.hpp"
#include "pipeline/outbox.hpp"
#include "pipeline/stages.hpp"
#include "relaycore/message.hpp"

namespace relaycore::pipeline {
namespace {

// Frames queued between flushes while history streams out.
constexpr std::size_t kFlushEvery = 32;

}  // namespace

void QueryStage::start(std::size_t threads) {
  const auto slice = std::chrono::microseconds(deps_.options.query_slice_micros);
  threads_.start(threads, [this, slice] {
    name_this_thread("rc-query");
    deps_.scheduler.work(
        [this](QueryJob& job, Clock::time_point deadline) {
          return std::visit([&](auto& j) { return run(j, deadline); }, job);
        },
        slice);
  });
}

void QueryStage::join() { threads_.join(); }

SliceOutcome QueryStage::run(HistoryJob& job, Clock::time_point deadline) {
  const Deps& d = deps_;
  Subscription& sub = *job.sub;
  std::shared_ptr<Outbox> outbox = sub.outbox.lock();
  if (!outbox || sub.cancelled()) return SliceOutcome::kDone;

  if (!job.reader) {
    QueryRequest request;
    request.max_seq = job.max_seq;
    // With a host PubSub, other nodes commit to the same storage without moving this node's
    // commit sequence, so history reaches the store's own last commit. Their events arrive
    // live unsequenced (never skipped); one committed around the REQ may come both ways, never
    // neither.
    if (d.options.pubsub) {
      Result<std::uint64_t> stored = d.storage->max_seq();
      if (!stored) {
        // History then ends at this node's last commit; other nodes' later events come live.
        d.log.failure(LogLevel::kWarn, "query: reading the store's last commit failed",
                      stored.error().message());
      }
      if (stored && *stored > request.max_seq) request.max_seq = *stored;
    }
    request.now = unix_now();
    request.max_limit = d.live.get().limits.max_limit;
    job.reader = std::make_shared<HistoryReader>(sub.filters, request);
  }

  std::size_t queued = 0;
  for (;;) {
    if (sub.cancelled()) return SliceOutcome::kDone;
    Result<const StoredEvent*> next = job.reader->next(*d.storage);
    if (!next) {
      d.log.failure(LogLevel::kError, "query: reading history failed", next.error().message());
      sub.cancel();
      d.index.remove(job.sub);
      outbox->send(Frame(closed_message(sub.sub_id, "error: could not read from storage")));
      return SliceOutcome::kDone;
    }
    const StoredEvent* e = *next;
    if (e == nullptr) break;
    if (!outbox->has_room(e->event->json().size() + sub.event_head.size() + 1)) {
      outbox->flush();
      return SliceOutcome::kPark;
    }
    outbox->enqueue(Frame(sub.event_head, e->event));
    job.reader->pop();
    if (++queued % kFlushEvery == 0) outbox->flush();
    if (Clock::now() >= deadline) {
      outbox->flush();
      return SliceOutcome::kYield;
    }
  }
  outbox->send(Frame(eose_message(sub.sub_id)));
  sub.go_live();
  return SliceOutcome::kDone;
}

SliceOutcome QueryStage::run(CountJob& job, Clock::time_point /*deadline*/) {
  const Deps& d = deps_;
  std::shared_ptr<Outbox> outbox = job.outbox.lock();
  if (!outbox) return SliceOutcome::kDone;
  QueryRequest request;
  request.now = unix_now();
  request.max_limit = d.live.get().limits.max_limit;
  Result<std::uint64_t> n = d.storage->count(job.filters, request);
  if (!n) {
    d.log.failure(LogLevel::kError, "query: counting failed", n.error().message());
    outbox->send(Frame(closed_message(job.sub_id, "error: could not count")));
    return SliceOutcome::kDone;
  }
  outbox->send(Frame(count_message(job.sub_id, *n)));
  return SliceOutcome::kDone;
}

}  // namespace relaycore::pipeline
