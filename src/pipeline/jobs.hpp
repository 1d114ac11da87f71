// The typed messages that travel between pipeline stages:
//   Session/submit --IngestJob--> verify --WriteJob--> write --DispatchJob--> dispatch
//   Session --QueryJob--> QueryScheduler --> query
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/policy.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::pipeline {

using Clock = std::chrono::steady_clock;

// Delivers the one OK an EVENT gets. Called exactly once, from a pipeline thread.
using AckFn = std::function<void(const OkResult&)>;

class HistoryReader;
class NegSession;
class Outbox;
struct Subscription;

// A parsed, not yet verified event.
struct IngestJob {
  EventPtr event;
  std::shared_ptr<const ClientInfo> client;
  AckFn ack;
  Clock::time_point received;
};

// An operator's erase (Relay::erase): the writer runs it between event batches, in queue order,
// and calls `done` on the writer thread with what was removed.
struct EraseJob {
  std::vector<EventId> ids;
  std::function<void(Result<std::vector<RemovedEvent>>)> done;
};

// A verified event that policy accepted, for the single writer; or, with `erase` set and no
// event, an erase.
struct WriteJob {
  EventPtr event;
  AckFn ack;
  Clock::time_point received;
  std::shared_ptr<EraseJob> erase;
};

// Events in commit order, for live subscribers and the PubSub.
struct DispatchJob {
  std::vector<EventPtr> events;
  // Commit sequence of each event; 0 for ephemeral and remote events.
  std::vector<std::uint64_t> seqs;
  // True for events this node committed (published to the PubSub); false for remote ones.
  bool local = true;
  // The events the commit removed (replaced, deleted, expired, erased), for change listeners.
  std::vector<RemovedEvent> removed;
  Clock::time_point committed;
};

// A DispatchJob takes a place in the dispatch queue per event (one at least): the queue bounds
// how many committed events wait for fan-out, whatever the size of the commits.
struct DispatchJobWeight {
  std::size_t operator()(const DispatchJob& job) const noexcept {
    return job.events.empty() ? 1 : job.events.size();
  }
};

// A REQ's history, served in slices: `reader` keeps its place between them.
struct HistoryJob {
  // The registered subscription, live at seq `max_seq`.
  std::shared_ptr<Subscription> sub;
  std::uint64_t max_seq = UINT64_MAX;
  // Created on the first slice.
  std::shared_ptr<HistoryReader> reader;
};

// A NIP-45 COUNT.
struct CountJob {
  std::weak_ptr<Outbox> outbox;
  std::string sub_id;
  std::vector<Filter> filters;
};

// One NIP-77 message to answer: the NEG-OPEN's initial message, or a NEG-MSG. The first job of
// a session reads its records from storage.
struct NegJob {
  std::shared_ptr<NegSession> session;
  std::string message;
};

// Work for the reader pool, scheduled per session by the QueryScheduler.
using QueryJob = std::variant<HistoryJob, CountJob, NegJob>;

// True when nobody waits for the job's result any more (its subscription was closed or
// replaced): the scheduler drops such jobs first when a session's queue is full.
bool abandoned(const QueryJob& job);

}  // namespace relaycore::pipeline
