// Dispatch stage: post-commit fan-out. Runs after the OK (deferred mode), in commit order, so
// that a subscription's live events arrive in the order they were committed.
#include "pipeline/stages.hpp"

namespace relaycore::pipeline {

void DispatchStage::start() {
  thread_ = std::thread([this] { run(); });
}

void DispatchStage::join() {
  if (thread_.joinable()) thread_.join();
}

void DispatchStage::run() {
  name_this_thread("rc-dispatch");
  DispatchJob job;
  while (core_->dispatch.pop(job)) {
    process(job);
    job = DispatchJob();
  }
}

void DispatchStage::process(DispatchJob& job) {
  Core& core = *core_;
  std::vector<std::shared_ptr<Subscription>> subs;
  for (std::size_t i = 0; i < job.events.size(); ++i) {
    const EventPtr& ev = job.events[i];
    subs.clear();
    core.index.match(*ev, job.seqs[i], subs);
    for (const std::shared_ptr<Subscription>& sub : subs) sub->deliver(ev);
    bump(core.stats.events_delivered, subs.size());
    if (job.local && core.pubsub) {
      Status s;
      if (!call_host(core.log, "dispatch: PubSub::publish threw",
                     [&] { s = core.pubsub->publish(ev, core.node_id); })) {
        s = Status::error("publish threw");
      } else if (!s) {
        // Delivery to other nodes is at-most-once: the event is counted as not published.
        core.log.failure(LogLevel::kWarn, "dispatch: publishing an event to other nodes failed",
                         s.message());
      }
      bump(s ? core.stats.pubsub_published : core.stats.pubsub_publish_failed);
    }
  }
  if (job.local && !core.listeners->empty()) {
    auto batch = std::make_shared<ChangeBatch>();
    for (std::size_t i = 0; i < job.events.size(); ++i) {
      if (job.seqs[i] != 0) batch->stored.push_back({job.events[i], job.seqs[i]});
    }
    batch->removed = std::move(job.removed);
    if (!batch->stored.empty() || !batch->removed.empty()) core.listeners->publish(batch);
  }
  core.stats.dispatch_latency.record(Clock::now() - job.committed);
}

}  // namespace relaycore::pipeline
