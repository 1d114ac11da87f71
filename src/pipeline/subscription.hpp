// Subscription: one REQ of one session. It starts "catching up" while its history is served,
// buffering the live events the dispatcher hands it, and turns live after EOSE, so that a
// subscriber never misses an event and never gets one twice.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"

namespace relaycore::pipeline {

class Outbox;

struct Subscription {
  Subscription(std::uint64_t key, std::string sub_id, std::vector<Filter> filters,
               std::weak_ptr<Outbox> outbox, std::size_t max_pending_bytes);

  // Relay-wide unique key for the index.
  const std::uint64_t key;
  const std::string sub_id;
  // ["EVENT","<sub id>", : built once, reused for every frame this subscription sends.
  const std::string event_head;
  const std::vector<Filter> filters;
  const std::weak_ptr<Outbox> outbox;
  const std::size_t max_pending_bytes;

  // A live event from the dispatcher: sent now when live, buffered while catching up.
  void deliver(const EventPtr& event);

  // Called after EOSE is queued: sends the buffered events, then goes live.
  void go_live();

  // Ends the subscription; later deliveries are dropped.
  void cancel();
  bool cancelled() const;

  // Set and read only under the index lock: the commit sequence this subscription went live
  // at. Stored events at or below it belong to its history, not to live delivery.
  std::uint64_t live_from = 0;

  // Touched only under the index lock: the event serial this subscription last matched, so a
  // subscription whose several filters match one event is delivered it once.
  std::uint64_t match_stamp = 0;

 private:
  mutable std::mutex mu_;
  bool live_ = false;
  bool cancelled_ = false;
  std::vector<EventPtr> pending_;
  std::size_t pending_bytes_ = 0;
};

}  // namespace relaycore::pipeline
