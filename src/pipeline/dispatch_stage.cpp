// Dispatch stage: post-commit fan-out. Runs after the OK (deferred mode), in commit order, so
// that a subscription's live events arrive in the order they were committed.
#include "pipeline/stages.hpp"

#include "pipeline/outbox.hpp"
#include "util/cpu_yield.hpp"

namespace relaycore::pipeline {
namespace {

// How long the dispatch thread delivers before it offers its core to waiting threads.
constexpr std::chrono::microseconds kYieldAfter{100};
// Most commits' fan-out handed to the connections in one flush when they have queued up.
constexpr std::size_t kJobsPerFlush = 16;

}  // namespace

void DispatchStage::start() {
  thread_ = std::thread([this] { run(); });
}

void DispatchStage::join() {
  if (thread_.joinable()) thread_.join();
}

void DispatchStage::run() {
  name_this_thread("rc-dispatch");
  std::vector<DispatchJob> jobs;
  while (deps_.in.pop_batch(jobs, kJobsPerFlush)) {
    // Commits that queued up while fan-out was busy go out together: each connection gets
    // their frames in one flush.
    FlushScope scope;
    for (DispatchJob& job : jobs) process(job);
    jobs.clear();
  }
}

bool DispatchStage::has_audience() const {
  return deps_.pubsub_shared || !deps_.listeners->empty() || deps_.index.size() > 0;
}

void DispatchStage::process(DispatchJob& job) {
  const Deps& d = deps_;
  // Each connection gets the batch's frames for it in one flush, and the callback thread one
  // wake-up for the in-process subscribers' deliveries.
  FlushScope scope;
  CpuYield yield(kYieldAfter);
  std::vector<std::shared_ptr<Subscription>> subs;
  for (std::size_t i = 0; i < job.events.size(); ++i) {
    const EventPtr& ev = job.events[i];
    subs.clear();
    d.index.match(*ev, job.seqs[i], subs);
    for (const std::shared_ptr<Subscription>& sub : subs) {
      sub->deliver(ev);
      yield();
    }
    bump(d.stats.events_delivered, subs.size());
    if (job.local && d.pubsub_shared) {
      Status s;
      if (!call_host(d.log, "dispatch: PubSub::publish threw",
                     [&] { s = d.pubsub->publish(ev, d.node_id); })) {
        s = Status::error("publish threw");
      } else if (!s) {
        // Delivery to other nodes is at-most-once: the event is counted as not published.
        d.log.failure(LogLevel::kWarn, "dispatch: publishing an event to other nodes failed",
                      s.message());
      }
      bump(s ? d.stats.pubsub_published : d.stats.pubsub_publish_failed);
    }
  }
  if (job.local && !d.listeners->empty()) {
    auto batch = std::make_shared<ChangeBatch>();
    for (std::size_t i = 0; i < job.events.size(); ++i) {
      if (job.seqs[i] != 0) batch->stored.push_back({job.events[i], job.seqs[i]});
    }
    batch->removed = std::move(job.removed);
    if (!batch->stored.empty() || !batch->removed.empty()) d.listeners->publish(batch);
  }
  d.stats.dispatch_latency.record(Clock::now() - job.committed);
}

}  // namespace relaycore::pipeline
