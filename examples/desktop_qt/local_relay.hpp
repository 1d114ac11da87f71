// The relay a desktop app keeps for itself: relaycore with SQLite in the app's data directory,
// the app's signing key next to it, and the bundled WebSocket server, which shares the relay with
// other apps on this machine (loopback only).
#pragma once

#include <QString>
#include <cstdint>
#include <memory>

#include "relaycore/keys.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/status.hpp"
#include "relaycore/websocket/server.hpp"

class LocalRelay {
 public:
  // Opens (or creates) the database and the key in `data_dir` and listens on 127.0.0.1:`port`;
  // port 0 lets the system pick a free one.
  static relaycore::Result<std::unique_ptr<LocalRelay>> open(const QString& data_dir,
                                                             std::uint16_t port);

  ~LocalRelay() { shutdown(); }

  relaycore::Relay& relay() { return *relay_; }
  const relaycore::Keypair& keys() const { return keys_; }
  std::uint16_t port() const { return server_->port(); }

  // Drains the relay first, so every note in flight is stored and answered, then closes the
  // WebSocket connections. Safe to call twice.
  void shutdown();

 private:
  LocalRelay(std::unique_ptr<relaycore::Relay> relay,
             std::unique_ptr<relaycore::websocket::Server> server, relaycore::Keypair keys)
      : relay_(std::move(relay)), server_(std::move(server)), keys_(keys) {}

  std::unique_ptr<relaycore::Relay> relay_;
  std::unique_ptr<relaycore::websocket::Server> server_;
  relaycore::Keypair keys_;
};
