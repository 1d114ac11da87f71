// The WebSocket side of an app's local relay: every connection gets a session of the relay, and
// plain HTTP gets the NIP-11 document. Shared by the examples that serve their relay on loopback.
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "relaycore/relay.hpp"
#include "relaycore/websocket/server.hpp"

namespace relaycore_examples {

class LocalHandler final : public relaycore::websocket::Handler {
 public:
  explicit LocalHandler(relaycore::Relay& relay) : relay_(relay) {}

  std::shared_ptr<relaycore::Session> on_open(std::shared_ptr<relaycore::Connection> connection,
                                              relaycore::ClientInfo client) override {
    return relay_.open_session(std::move(connection), std::move(client));
  }

  std::optional<relaycore::websocket::HttpResponse> on_http(
      const relaycore::websocket::HttpRequest&) override {
    relaycore::websocket::HttpResponse response;
    response.content_type = "application/nostr+json";
    response.body = relay_.info_document();
    return response;
  }

 private:
  relaycore::Relay& relay_;
};

}  // namespace relaycore_examples
