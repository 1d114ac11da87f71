// The pipeline stages. Each runs on its own threads, takes typed jobs from its BoundedQueue in
// Core, and hands typed jobs to the next:
//   VerifyStage (pool): limits, duplicate lookup, id, signature, NIP-70, policy
//   WriteStage (one thread): group commit, audit enqueue, acks
//   DispatchStage (one thread): live subscriptions and the PubSub, in commit order
//   QueryStage (pool): REQ history and COUNT, in slices scheduled per session
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "pipeline/core.hpp"
#include "pipeline/thread_group.hpp"

namespace relaycore::pipeline {

// Sends the one OK of an event and records the ack latency.
void acknowledge(Core& core, const AckFn& ack, Clock::time_point received, OkResult result);

class VerifyStage {
 public:
  explicit VerifyStage(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  void start(std::size_t threads);
  // Returns once the ingest queue is closed and drained.
  void join();

 private:
  void run();
  void process(IngestJob& job);
  std::shared_ptr<Core> core_;
  ThreadGroup threads_;
};

class DispatchStage {
 public:
  explicit DispatchStage(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  void start();
  void join();
  // Delivers one job's events in order; used by the dispatch thread, and by the writer in
  // inline mode.
  void process(DispatchJob& job);

 private:
  void run();
  std::shared_ptr<Core> core_;
  std::thread thread_;
};

class WriteStage {
 public:
  WriteStage(std::shared_ptr<Core> core, DispatchStage& dispatcher)
      : core_(std::move(core)), dispatcher_(dispatcher) {}
  void start();
  void join();

 private:
  void run();
  void process(std::vector<WriteJob>& jobs);
  void purge_expired();
  std::shared_ptr<Core> core_;
  DispatchStage& dispatcher_;
  std::thread thread_;
};

class QueryStage {
 public:
  explicit QueryStage(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  void start(std::size_t threads);
  void join();

 private:
  SliceOutcome run(HistoryJob& job, Clock::time_point deadline);
  SliceOutcome run(CountJob& job, Clock::time_point deadline);
  std::shared_ptr<Core> core_;
  ThreadGroup threads_;
};

}  // namespace relaycore::pipeline
