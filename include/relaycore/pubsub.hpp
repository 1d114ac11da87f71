// PubSub: carries committed events between relay nodes. In-process by default; Redis for
// several nodes. Each node stamps what it publishes with its origin id and ignores its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

// [Threading] publish() is called from relaycore's dispatch thread. The handler given to
//   subscribe() may be called from any one thread of the PubSub's choosing, never concurrently
//   with itself.
// [Blocking] publish() must not block for long: it runs after the OK, but it delays delivery.
//   Delivery is at-most-once; a PubSub that cannot publish drops the event and counts it.
// [Ownership] Events are shared EventPtr; the PubSub may keep them.
// [Errors] publish() returns "error: ..." when the event could not be sent; relaycore counts it
//   and carries on.
class RELAYCORE_API PubSub {
 public:
  using Handler = std::function<void(const EventPtr& event, const std::string& origin)>;

  virtual ~PubSub() = default;

  // Publishes an event committed by the node `origin`.
  virtual Status publish(const EventPtr& event, const std::string& origin) = 0;

  // Registers the one handler for events published by any node (including this one, whose
  // echoes relaycore drops by origin). Called once, before the first publish.
  virtual Status subscribe(Handler handler) = 0;

  // Stops delivery; no handler call starts after it returns.
  virtual void close() = 0;

  // Events whose publish() returned ok but that never reached the other nodes (e.g. still
  // queued when the connection dropped), since the PubSub was created. Relay::stats() moves
  // them from pubsub_published to pubsub_publish_failed.
  // [Threading] Called from any thread. Default: 0, for a PubSub that loses nothing it accepted.
  virtual std::uint64_t dropped_after_accept() const { return 0; }
};

// In-process PubSub: publish() calls the handler directly.
RELAYCORE_API std::shared_ptr<PubSub> new_local_pubsub();

}  // namespace relaycore
