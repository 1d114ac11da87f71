// The C API's internals: what its opaque handles hold, and the one way every entry point runs
// (errors to codes and the thread's last error, nothing thrown across the boundary).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "relaycore/relay.hpp"
#include "relaycore/relaycore.h"

namespace relaycore::capi {

struct ServerState;

// What a relay handle and every handle made from it share: the relay, and whether it is closed.
// Each call takes its own reference, so freeing the handle from inside a callback never pulls
// the relay from under a call in progress.
struct RelayState {
  std::shared_ptr<Relay> relay;
  Limits limits;
  std::atomic<bool> closed{false};

  std::mutex servers_mu;  // guards servers
  std::vector<std::weak_ptr<ServerState>> servers;
};

// Records `message` as this thread's last error and returns `status`.
relaycore_status fail(relaycore_status status, std::string_view message) noexcept;

// The status for a relaycore Status: invalid input or a failure.
relaycore_status fail(const Status& status) noexcept;

// Clears this thread's last error.
void clear_error() noexcept;

// True while this thread runs a session's send, close or queued_bytes callback.
bool in_connection_callback() noexcept;

// Marks this thread as inside a connection callback for its lifetime.
class ConnectionCallbackScope {
 public:
  ConnectionCallbackScope() noexcept;
  ~ConnectionCallbackScope();
  ConnectionCallbackScope(const ConnectionCallbackScope&) = delete;
  ConnectionCallbackScope& operator=(const ConnectionCallbackScope&) = delete;
};

// Runs the body of an entry point: clears the last error, and turns any exception into
// RELAYCORE_ERROR with its message.
template <typename F>
relaycore_status run(F&& body) noexcept {
  try {
    clear_error();
    return body();
  } catch (const std::bad_alloc&) {
    return fail(RELAYCORE_ERROR, "error: out of memory");
  } catch (const std::exception& e) {
    return fail(RELAYCORE_ERROR, std::string("error: ") + e.what());
  } catch (...) {
    return fail(RELAYCORE_ERROR, "error: unknown failure");
  }
}

// The checks every call on a handle of a relay starts with: not NULL, not from inside a
// connection callback, relay not closed. RELAYCORE_OK when the call may go on.
relaycore_status check_handle(const void* handle, const char* what) noexcept;
relaycore_status check_open(const RelayState& state) noexcept;

// A malloc'ed, NUL-terminated copy for the caller to free with relaycore_free.
char* copy_out(std::string_view s);

// Sets *out (when out is not NULL) to NULL or 0, so every failure leaves out parameters zeroed.
template <typename T>
void zero(T* out) noexcept {
  if (out != nullptr) *out = T{};
}

// Parses one event object under the relay's limits.
relaycore_status parse_event_arg(const char* json, const Limits& limits, EventPtr& out);

// Parses one filter object or an array of them, as the filters of one REQ.
relaycore_status parse_filters_arg(const char* json, const Limits& limits,
                                   std::vector<Filter>& out);

// Checks the caller's relaycore_options, of any released layout, and turns them into `out`
// (opening the audit log they name).
relaycore_status to_options(const relaycore_options* in, Options& out);

// Closes a relay: drains it, then stops its servers. RELAYCORE_CLOSED when it already was.
relaycore_status close_relay(RelayState& state);

// Stops a server. RELAYCORE_CLOSED when it already was.
relaycore_status stop_server(ServerState& server);

// Runs a *_free body. From inside a connection callback, where closing would wait on the very
// thread it runs on, the body runs on a thread of its own instead.
void free_handle(std::function<void()> body) noexcept;

}  // namespace relaycore::capi

struct relaycore_relay {
  std::shared_ptr<relaycore::capi::RelayState> state;
};
