// The pipeline stages. Each runs on its own threads, takes typed jobs from its BoundedQueue in
// Core, and hands typed jobs to the next:
//   VerifyStage (pool): the Verifier (limits, duplicate lookup, id, signature, NIP-70, policy)
//   WriteStage (one thread): group commit, audit enqueue, acks
//   DispatchStage (one thread): live subscriptions and the PubSub, in commit order
//   QueryStage (pool): REQ history and COUNT, in slices scheduled per session
#pragma once

#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "pipeline/core.hpp"
#include "pipeline/retention.hpp"
#include "pipeline/thread_group.hpp"

namespace relaycore::pipeline {

class VerifyStage {
 public:
  // What the stage uses, and nothing else of the Core.
  struct Deps {
    const Verifier& verifier;
    const Log& log;
    StatsRecorder& stats;
    BoundedQueue<IngestJob>& in;
    BoundedQueue<WriteJob>& out;
  };
  explicit VerifyStage(Deps deps) : deps_(std::move(deps)) {}
  void start(std::size_t threads);
  // Returns once the ingest queue is closed and drained.
  void join();

 private:
  void run();
  void process(IngestJob& job);
  Deps deps_;
  ThreadGroup threads_;
};

class DispatchStage {
 public:
  struct Deps {
    const Log& log;
    StatsRecorder& stats;
    SubscriptionIndex& index;
    std::shared_ptr<PubSub> pubsub;
    // The host gave the PubSub: other nodes may hear what this one publishes. The relay's own
    // in-process PubSub has no listener but this node, which ignores its own events.
    bool pubsub_shared;
    const std::string& node_id;
    std::shared_ptr<ChangeListeners> listeners;
    BoundedQueue<DispatchJob, DispatchJobWeight>& in;
  };
  explicit DispatchStage(Deps deps) : deps_(std::move(deps)) {}
  void start();
  void join();
  // Delivers one job's events in order; used by the dispatch thread, and by the writer in
  // inline mode.
  void process(DispatchJob& job);
  // Whether a job would reach anyone: a live subscription, a shared PubSub or a change
  // listener.
  // The writer asks after recording its commit (SubscriptionIndex::set_committed): a
  // subscription opened after that is live only from a later commit, so its history holds
  // the events of a job the writer dropped because nobody listened.
  bool has_audience() const;

 private:
  void run();
  Deps deps_;
  std::thread thread_;
};

class WriteStage {
 public:
  struct Deps {
    const Options& options;
    const LiveOptions& live;
    const Log& log;
    StatsRecorder& stats;
    RecentIds& recent_ids;
    SubscriptionIndex& index;
    std::shared_ptr<Storage> storage;
    std::shared_ptr<AuditSink> audit;
    BoundedQueue<WriteJob>& in;
    BoundedQueue<DispatchJob, DispatchJobWeight>& out;
  };
  WriteStage(Deps deps, DispatchStage& dispatcher)
      : deps_(std::move(deps)), dispatcher_(dispatcher), retention_(*deps_.storage, deps_.log) {}
  void start();
  void join();

 private:
  void run();
  // Commits event jobs in group batches and erase jobs on their own, in queue order.
  void run_jobs(std::vector<WriteJob>& jobs);
  // With a commit delay, holds a batch open for more jobs when other clients are writing too.
  // `polled`: the batch was taken without waiting, between upkeep steps.
  void hold_open(std::vector<WriteJob>& jobs, bool polled);
  void process(std::span<WriteJob> jobs);
  void purge_expired();
  void erase(EraseJob& job);
  // One retention step (see Retention), audited and reported like a purge.
  void retain();
  // One step of the storage's upkeep (Storage::maintain); notes whether more is pending.
  void maintain();
  // Audits removals no stored event caused (expiry, erase, retention) and hands them to the change
  // listeners; the audit sink's status.
  Status finish_removals(std::vector<RemovedEvent> removed);
  // Hands a batch's records to the audit sink, timing any wait for room.
  Status audit(std::vector<AuditRecord> records);
  Deps deps_;
  DispatchStage& dispatcher_;
  Retention retention_;
  // The last upkeep step found work: the next one runs as soon as nothing is queued.
  bool maintenance_pending_ = false;
  // Jobs in the last batch taken: more than one means other clients are writing at the same
  // time, which is when a commit delay gathers more. An idle wait that ends empty resets it; a
  // look at the queue between upkeep steps does not.
  std::size_t last_taken_ = 0;
  // process()'s working vectors, kept between batches so that a steady stream of commits
  // allocates none of them again.
  std::vector<EventPtr> to_store_;
  std::vector<WriteResult> results_;
  std::vector<OkResult> oks_;
  std::thread thread_;
};

class QueryStage {
 public:
  struct Deps {
    const Options& options;
    const LiveOptions& live;
    const Log& log;
    SubscriptionIndex& index;
    std::shared_ptr<Storage> storage;
    QueryScheduler& scheduler;
  };
  explicit QueryStage(Deps deps) : deps_(std::move(deps)) {}
  void start(std::size_t threads);
  void join();

 private:
  SliceOutcome run(HistoryJob& job, Clock::time_point deadline);
  SliceOutcome run(CountJob& job, Clock::time_point deadline);
  // Defined in neg_stage.cpp.
  SliceOutcome run(NegJob& job, Clock::time_point deadline);
  Deps deps_;
  ThreadGroup threads_;
};

}  // namespace relaycore::pipeline
