// Relay: the object a host opens. It owns the pipeline verify -> persist -> audit-enqueue ->
// ack -> post-commit dispatch, and hands out sessions for the host's connections.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "relaycore/connection.hpp"
#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/options.hpp"
#include "relaycore/policy.hpp"
#include "relaycore/stats.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

// The answer to one EVENT, as it goes into ["OK", id, accepted, message].
struct OkResult {
  bool accepted = false;
  std::string message;  // "" or "<prefix>: <detail>"
};

class RELAYCORE_API Relay {
 public:
  // Opens storage, reconciles the audit log with it, and starts the pipeline threads.
  static Result<std::unique_ptr<Relay>> open(Options options);

  virtual ~Relay() = default;

  // A session for one client connection. The relay keeps a reference to the connection until
  // the session is closed.
  virtual std::shared_ptr<Session> open_session(std::shared_ptr<Connection> connection,
                                                ClientInfo client) = 0;

  // Ingests an event without a socket and waits for its OK. The event goes through the same
  // checks as one from a client (id, signature, policy, limits).
  virtual OkResult submit(EventPtr event) = 0;

  // As submit(), but returns at once; `done` runs on a pipeline thread with the OK.
  virtual void submit_async(EventPtr event, std::function<void(const OkResult&)> done) = 0;

  // The NIP-11 relay information document.
  virtual std::string info_document() const = 0;

  virtual RelayStats stats() const = 0;

  // Stops taking new work, then drains in pipeline order: every accepted event is committed,
  // audited and answered, then dispatch finishes and the threads stop. Returns ok when the
  // drain lost nothing; otherwise "error: ..." says what was lost: audit records the sink could
  // not write (its close() failed), or committed events that never reached the other nodes
  // (the PubSub failed or dropped them during the drain). Safe to call twice: a later call
  // returns the first one's result. The destructor calls it and logs a failure, so a host that
  // handles the result itself calls it before dropping the relay.
  virtual Status shutdown() = 0;
};

}  // namespace relaycore
