// Query stage: serves REQ history and COUNT from storage on a pool of reader threads. History
// is bounded by the commit sequence the subscription went live at, so nothing is both in the
// history and delivered live, and nothing falls between the two.
#include <algorithm>

#include "pipeline/session_impl.hpp"
#include "pipeline/stages.hpp"

namespace relaycore::pipeline {
namespace {

// Newest first, then lowest id: the order NIP-01 asks for and storage returns.
bool newer_first(const StoredEvent& a, const StoredEvent& b) {
  if (a.event->created_at() != b.event->created_at()) {
    return a.event->created_at() > b.event->created_at();
  }
  return a.event->id() < b.event->id();
}

}  // namespace

void QueryStage::start(std::size_t threads) {
  threads_.start(threads, [this] { run(); });
}

void QueryStage::join() { threads_.join(); }

void QueryStage::run() {
  QueryJob job;
  while (core_->queries.pop(job)) {
    if (job.kind == QueryJob::Kind::kReq) {
      serve_req(job);
    } else {
      serve_count(job);
    }
    job = QueryJob();
  }
}

void QueryStage::serve_req(QueryJob& job) {
  Core& core = *core_;
  const std::shared_ptr<Subscription>& sub = job.sub;
  std::shared_ptr<SessionImpl> session = sub->session.lock();
  if (!session || sub->cancelled()) return;

  QueryRequest request;
  request.max_seq = job.max_seq;
  // With a host PubSub, other nodes commit to the same storage without moving this node's
  // commit sequence, so history reaches the store's own last commit. Their events arrive live
  // unsequenced (never skipped); one committed around the REQ may come both ways, never neither.
  if (core.options.pubsub) {
    Result<std::uint64_t> stored = core.storage->max_seq();
    if (stored && *stored > request.max_seq) request.max_seq = *stored;
  }
  request.now = unix_now();
  request.max_limit = core.options.limits.max_limit;
  std::vector<StoredEvent> found;
  for (const Filter& filter : sub->filters) {
    if (filter.limit && *filter.limit == 0) continue;
    Status s = core.storage->query(filter, request, [&](const StoredEvent& e) {
      found.push_back(e);
      return !sub->cancelled();
    });
    if (!s) {
      sub->cancel();
      core.index.remove(sub);
      session->send(Frame(closed_message(sub->sub_id, "error: could not read from storage")));
      return;
    }
  }
  if (sub->filters.size() > 1) {
    std::sort(found.begin(), found.end(), newer_first);
    found.erase(std::unique(found.begin(), found.end(),
                            [](const StoredEvent& a, const StoredEvent& b) {
                              return a.event->id() == b.event->id();
                            }),
                found.end());
  }
  for (StoredEvent& e : found) {
    if (sub->cancelled()) return;
    if (!session->wait_for_room(e.event->json().size() + sub->event_head.size())) {
      session->close_slow_consumer();
      return;
    }
    session->send(Frame(sub->event_head, std::move(e.event)));
  }
  if (sub->cancelled()) return;
  session->send(Frame(eose_message(sub->sub_id)));
  sub->go_live();
}

void QueryStage::serve_count(QueryJob& job) {
  Core& core = *core_;
  std::shared_ptr<SessionImpl> session = job.session.lock();
  if (!session) return;
  QueryRequest request;
  request.now = unix_now();
  request.max_limit = core.options.limits.max_limit;
  Result<std::uint64_t> n = core.storage->count(job.filters, request);
  if (!n) {
    session->send(Frame(closed_message(job.sub_id, "error: could not count")));
    return;
  }
  session->send(Frame(count_message(job.sub_id, *n)));
}

}  // namespace relaycore::pipeline
