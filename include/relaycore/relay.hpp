// Relay: the object a host opens. It owns the pipeline verify -> persist -> audit-enqueue ->
// ack -> post-commit dispatch, and hands out sessions for the host's connections.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "relaycore/connection.hpp"
#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/options.hpp"
#include "relaycore/policy.hpp"
#include "relaycore/stats.hpp"
#include "relaycore/status.hpp"
#include "relaycore/subscribe.hpp"

namespace relaycore {

// The answer to one EVENT, as it goes into ["OK", id, accepted, message].
struct OkResult {
  bool accepted = false;
  std::string message;  // "" or "<prefix>: <detail>"
};

// [Threading] Every method may be called from any thread, concurrently, including from inside
//   the relay's own callbacks. Host callbacks run on relaycore threads: policies on the verify
//   and reader threads; subscription, change-listener and submit_async callbacks on the one
//   callback thread ("rc-callback"), never on the writer.
// [Blocking] submit(), erase(), query() and count() block the caller (on the commit, or on
//   storage); the rest return at once.
// [Ownership] Sessions, subscription and listener handles keep the relay's core alive, so they
//   may outlive the Relay object; after shutdown they receive nothing more.
// [Errors] Status and Result values with NIP-01 prefixes; nothing throws.
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

  // As submit(), but returns at once; `done` runs on the callback thread with the OK (never on
  // the writer), so it may call submit() itself.
  virtual void submit_async(EventPtr event, std::function<void(const OkResult&)> done) = 0;

  // The stored events matching any of the filters, as a REQ's history: newest first, each
  // filter's limit applied (clamped to Limits::max_limit), expired and deleted events left out,
  // each event once. `visit` returns false to stop. Runs on the caller's thread.
  virtual Status query(const std::vector<Filter>& filters,
                       const std::function<bool(const EventPtr&)>& visit) = 0;

  // The number of stored events matching any of the filters (NIP-45; limits ignored).
  virtual Result<std::uint64_t> count(const std::vector<Filter>& filters) = 0;

  // A live subscription: the history, then on_eose, then matching events as they commit, each
  // exactly once (an event committed while it starts is in one or the other, never both).
  // Callbacks run on the callback thread. "error: ..." when the relay is shutting down.
  virtual Result<std::unique_ptr<SubscriptionHandle>> subscribe(std::vector<Filter> filters,
                                                                SubscribeCallbacks callbacks) = 0;

  // Calls `listener` with every later commit of this node, in commit order, after its OKs, on
  // the callback thread: what it stored and what it removed. Apps keep caches right with it;
  // servers feed webhooks and indexes.
  virtual std::unique_ptr<ListenerHandle> listen(ChangeListener listener) = 0;

  // An operator's delete: removes the stored events among `ids` outright and returns them
  // (reason kErased). Unlike a NIP-09 deletion it leaves no tombstone, so an author may publish
  // an erased event again. It runs on the writer between event batches; each removed event gets
  // an audit record (event_erased) and reaches the change listeners. Blocks until done.
  // "error: ..." when storage failed (nothing was erased), when the audit sink refused the
  // records (the events are erased all the same), or when the relay is shutting down.
  virtual Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) = 0;

  // The NIP-11 relay information document.
  virtual std::string info_document() const = 0;

  // Applies new limits, rate_limits, event_policy, filter_policy, auth_on_connect,
  // max_future_seconds, info and retention from `options` while connections stay open; each
  // takes effect from the next message, event or query (new retention rules from the writer's
  // next idle moment). Rate-limit buckets and connection counts carry over. The other fields
  // (storage, threads, queues, ...) are fixed at open and ignored here. "invalid: ..." and no
  // change when the rate limits or the retention rules are bad. Each call's settings (policies
  // included) are kept until the relay is destroyed, so that readers never wait on a lock:
  // this is for an operator's reloads, not for every request.
  virtual Status reconfigure(const Options& options) = 0;

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
