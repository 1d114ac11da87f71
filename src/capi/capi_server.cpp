// The C API's WebSocket server: relaycore::websocket::Server with a session per connection and
// the NIP-11 document over HTTP. The relay stops its servers when it closes.
#include "capi/capi.hpp"
#include "relaycore/websocket/server.hpp"

namespace relaycore::capi {

struct ServerState {
  std::mutex mu;  // guards server and port
  std::unique_ptr<websocket::Server> server;
  std::uint16_t port = 0;
};

namespace {

// Hands every WebSocket connection to a relay session; HTTP requests that ask for
// application/nostr+json get the NIP-11 document.
class RelayHandler final : public websocket::Handler {
 public:
  explicit RelayHandler(std::shared_ptr<Relay> relay) : relay_(std::move(relay)) {}

  std::shared_ptr<Session> on_open(std::shared_ptr<Connection> connection,
                                   ClientInfo client) override {
    return relay_->open_session(std::move(connection), std::move(client));
  }

  std::optional<websocket::HttpResponse> on_http(const websocket::HttpRequest& request) override {
    if (request.method != "GET") return std::nullopt;
    if (request.header("accept").find("application/nostr+json") == std::string::npos) {
      return std::nullopt;
    }
    websocket::HttpResponse response;
    response.content_type = "application/nostr+json";
    response.headers.emplace_back("Access-Control-Allow-Origin", "*");
    response.body = relay_->info_document();
    return response;
  }

 private:
  const std::shared_ptr<Relay> relay_;
};

}  // namespace

relaycore_status stop_server(ServerState& state) {
  std::unique_ptr<websocket::Server> server;
  {
    std::lock_guard lock(state.mu);
    server.swap(state.server);
  }
  if (!server) return fail(RELAYCORE_CLOSED, "error: server is stopped");
  server->stop();
  return RELAYCORE_OK;
}

}  // namespace relaycore::capi

struct relaycore_server {
  std::shared_ptr<relaycore::capi::ServerState> state;
};

using namespace relaycore;
using namespace relaycore::capi;

extern "C" {

relaycore_status relaycore_server_start(relaycore_relay* relay, const char* host, uint16_t port,
                                        relaycore_server** server_out) {
  zero(server_out);
  return run([&] {
    if (server_out == nullptr) {
      return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: server_out is NULL");
    }
    if (relaycore_status s = check_handle(relay, "relay"); s != RELAYCORE_OK) return s;
    std::shared_ptr<RelayState> relay_state = relay->state;
    if (host == nullptr || host[0] == '\0') {
      return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: host is NULL or empty");
    }
    websocket::ServerOptions options;
    options.host = host;
    options.port = port;
    auto state = std::make_shared<ServerState>();
    auto server = std::make_unique<relaycore_server>();
    server->state = state;
    // Registered before it starts, under the lock close_relay() takes, so a relay closing
    // meanwhile either sees the server and stops it or is seen closed here.
    std::lock_guard lock(relay_state->servers_mu);
    if (relaycore_status s = check_open(*relay_state); s != RELAYCORE_OK) return s;
    Result<std::unique_ptr<websocket::Server>> started =
        websocket::Server::start(options, std::make_shared<RelayHandler>(relay_state->relay));
    if (!started) return fail(started.error());
    state->port = (*started)->port();
    state->server = std::move(started).value();
    std::erase_if(relay_state->servers, [](const auto& weak) { return weak.expired(); });
    relay_state->servers.push_back(state);
    *server_out = server.release();
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_server_port(relaycore_server* server, uint16_t* port) {
  zero(port);
  return run([&] {
    if (port == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: port is NULL");
    if (relaycore_status s = check_handle(server, "server"); s != RELAYCORE_OK) return s;
    std::lock_guard lock(server->state->mu);
    if (!server->state->server) return fail(RELAYCORE_CLOSED, "error: server is stopped");
    *port = server->state->port;
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_server_stop(relaycore_server* server) {
  return run([&] {
    if (relaycore_status s = check_handle(server, "server"); s != RELAYCORE_OK) return s;
    return stop_server(*server->state);
  });
}

void relaycore_server_free(relaycore_server* server) {
  if (server == nullptr) return;
  free_handle([server] {
    (void)relaycore_server_stop(server);
    delete server;
  });
}

}  // extern "C"
