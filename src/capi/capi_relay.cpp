// The C API's relay: open and close, submit, query, count and the documents.
#include "capi/capi.hpp"

namespace relaycore::capi {
namespace {

// The relay of a handle, when a call on it may go on.
relaycore_status open_state(relaycore_relay* relay, std::shared_ptr<RelayState>& out) {
  if (relaycore_status s = check_handle(relay, "relay"); s != RELAYCORE_OK) return s;
  if (relaycore_status s = check_open(*relay->state); s != RELAYCORE_OK) return s;
  out = relay->state;
  return RELAYCORE_OK;
}

// Runs `body(state)` for a call on an open relay that returns a string to the caller.
template <typename F>
relaycore_status document(relaycore_relay* relay, char** out, F&& body) {
  zero(out);
  return run([&] {
    if (out == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: out is NULL");
    std::shared_ptr<RelayState> state;
    if (relaycore_status s = open_state(relay, state); s != RELAYCORE_OK) return s;
    *out = copy_out(body(*state->relay));
    return RELAYCORE_OK;
  });
}

}  // namespace

relaycore_status close_relay(RelayState& state) {
  if (state.closed.exchange(true)) return fail(RELAYCORE_CLOSED, "error: relay is already closed");
  // The drain's losses (audit records, cross-node publishes) are reported once the servers stop.
  const Status drained = state.relay->shutdown();
  std::vector<std::weak_ptr<ServerState>> servers;
  {
    std::lock_guard lock(state.servers_mu);
    servers.swap(state.servers);
  }
  for (const std::weak_ptr<ServerState>& weak : servers) {
    if (std::shared_ptr<ServerState> server = weak.lock()) (void)stop_server(*server);
  }
  if (!drained) return fail(RELAYCORE_ERROR, drained.message());
  return RELAYCORE_OK;
}

}  // namespace relaycore::capi

using namespace relaycore;
using namespace relaycore::capi;

extern "C" {

relaycore_status relaycore_relay_open(const relaycore_options* options,
                                      relaycore_relay** relay_out) {
  zero(relay_out);
  return run([&] {
    if (options == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: options is NULL");
    if (relay_out == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: relay_out is NULL");
    Options o;
    if (relaycore_status s = to_options(options, o); s != RELAYCORE_OK) return s;
    auto state = std::make_shared<RelayState>();
    state->limits = o.limits;
    Result<std::unique_ptr<Relay>> opened = Relay::open(std::move(o));
    if (!opened) return fail(opened.error());
    state->relay = std::move(opened).value();
    *relay_out = new relaycore_relay{std::move(state)};
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_relay_close(relaycore_relay* relay) {
  if (relay == nullptr) {
    clear_error();
    return RELAYCORE_OK;
  }
  return run([&] {
    if (relaycore_status s = check_handle(relay, "relay"); s != RELAYCORE_OK) return s;
    std::shared_ptr<RelayState> state = relay->state;
    return close_relay(*state);
  });
}

void relaycore_relay_free(relaycore_relay* relay) {
  if (relay == nullptr) return;
  free_handle([relay] {
    (void)relaycore_relay_close(relay);
    delete relay;
  });
}

relaycore_status relaycore_submit(relaycore_relay* relay, const char* event_json, int* accepted,
                                  char** message) {
  zero(accepted);
  zero(message);
  return run([&] {
    std::shared_ptr<RelayState> state;
    if (relaycore_status s = open_state(relay, state); s != RELAYCORE_OK) return s;
    EventPtr event;
    if (relaycore_status s = parse_event_arg(event_json, state->limits, event); s != RELAYCORE_OK) {
      return s;
    }
    OkResult ok = state->relay->submit(std::move(event));
    if (message != nullptr) *message = copy_out(ok.message);
    if (accepted != nullptr) *accepted = ok.accepted ? 1 : 0;
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_submit_async(relaycore_relay* relay, const char* event_json,
                                        relaycore_ok_fn done, void* user) {
  return run([&] {
    std::shared_ptr<RelayState> state;
    if (relaycore_status s = open_state(relay, state); s != RELAYCORE_OK) return s;
    EventPtr event;
    if (relaycore_status s = parse_event_arg(event_json, state->limits, event); s != RELAYCORE_OK) {
      return s;
    }
    std::function<void(const OkResult&)> on_ok;
    if (done != nullptr) {
      on_ok = [done, user, id = std::string(event->id_hex())](const OkResult& ok) {
        done(user, id.c_str(), ok.accepted ? 1 : 0, ok.message.c_str());
      };
    }
    state->relay->submit_async(std::move(event), std::move(on_ok));
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_query(relaycore_relay* relay, const char* filters_json,
                                 relaycore_query_fn visit, void* user) {
  return run([&] {
    std::shared_ptr<RelayState> state;
    if (relaycore_status s = open_state(relay, state); s != RELAYCORE_OK) return s;
    if (visit == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: visit is NULL");
    std::vector<Filter> filters;
    if (relaycore_status s = parse_filters_arg(filters_json, state->limits, filters);
        s != RELAYCORE_OK) {
      return s;
    }
    std::string json;
    Status s = state->relay->query(filters, [&](const EventPtr& event) {
      json.assign(event->json());
      // A visit that closed the relay ends the query too.
      return visit(user, json.c_str()) == 0 && !state->closed.load();
    });
    if (!s) return fail(s);
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_count(relaycore_relay* relay, const char* filters_json,
                                 uint64_t* count) {
  zero(count);
  return run([&] {
    if (count == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: count is NULL");
    std::shared_ptr<RelayState> state;
    if (relaycore_status s = open_state(relay, state); s != RELAYCORE_OK) return s;
    std::vector<Filter> filters;
    if (relaycore_status s = parse_filters_arg(filters_json, state->limits, filters);
        s != RELAYCORE_OK) {
      return s;
    }
    Result<std::uint64_t> n = state->relay->count(filters);
    if (!n) return fail(n.error());
    *count = *n;
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_stats_json(relaycore_relay* relay, char** json_out) {
  return document(relay, json_out, [](const Relay& r) { return stats_json(r.stats()); });
}

relaycore_status relaycore_stats_prometheus(relaycore_relay* relay, char** text_out) {
  return document(relay, text_out, [](const Relay& r) { return prometheus_text(r.stats()); });
}

relaycore_status relaycore_info_document(relaycore_relay* relay, char** json_out) {
  return document(relay, json_out, [](const Relay& r) { return r.info_document(); });
}

}  // extern "C"
