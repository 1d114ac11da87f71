// In-process access to a Relay's events: a live subscription with typed callbacks, and a
// listener for every commit. They are what an app embedding its own relay uses instead of a
// loopback WebSocket; see Relay::subscribe() and Relay::listen().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/storage.hpp"

namespace relaycore {

// What a subscription reports. Every member may be empty.
// [Threading] All of a relay's callbacks run on its one callback thread ("rc-callback"), one at
//   a time and in order for each subscription; never on the writer, verify or reader threads.
// [Blocking] A slow callback delays the other in-process callbacks of the relay, never ingest:
//   see SubscriptionHandle for what happens to a subscription that falls behind.
// [Errors] Exceptions thrown by a callback are caught and dropped.
struct SubscribeCallbacks {
  // The stored history, newest first (as a REQ's), then every matching event committed after
  // the subscription started, in commit order. Each event exactly once.
  std::function<void(const EventPtr&)> on_event;
  // Between the history and the live events.
  std::function<void()> on_eose;
  // The relay ended the subscription: `reason` carries a NIP-01 prefix ("error: subscriber too
  // slow ..." when its callbacks fell behind, "error: ..." when storage failed). Nothing follows.
  // Closing the handle, and Relay::shutdown(), end it without this call: after shutdown() no
  // callback runs.
  std::function<void(std::string_view reason)> on_closed;
};

// A live subscription; destroying the handle (or close()) ends it.
// [Threading] close() and the destructor may be called from any thread, including from inside
//   the subscription's own callbacks; once close() returns, no callback of it starts any more.
// [Ownership] The relay keeps no reference to the handle; the handle keeps the relay's core
//   alive until it is destroyed.
// Overflow rule: events wait for the callback thread in a queue of at most
// Options::max_outbound_bytes of JSON. History pauses while the queue is half full; a live
// subscription whose queue overflows ends with on_closed("error: subscriber too slow ...").
class RELAYCORE_API SubscriptionHandle {
 public:
  virtual ~SubscriptionHandle() = default;
  virtual void close() = 0;
};

// One commit, as a change listener sees it.
struct ChangeBatch {
  // The events the commit stored, in commit order, with their sequences.
  std::vector<StoredEvent> stored;
  // The events it removed, each with its reason: older versions replaced, events a NIP-09
  // deletion named, NIP-40 expirations purged (kExpired), operator erases (kErased, see
  // Relay::erase) and retention removals (kRetention, see relaycore/retention.hpp). A purge, an
  // erase or a retention batch is a commit of its own, with nothing stored.
  std::vector<RemovedEvent> removed;
  // True when the listener fell so far behind that batches were dropped before this one: a
  // cache built from the batches must be rebuilt from a query.
  bool gap = false;
};

using ChangeListener = std::function<void(const ChangeBatch&)>;

// A registered change listener; destroying the handle removes it.
// [Threading] As SubscriptionHandle.
class RELAYCORE_API ListenerHandle {
 public:
  virtual ~ListenerHandle() = default;
};

}  // namespace relaycore
