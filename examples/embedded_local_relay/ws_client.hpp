// A minimal WebSocket client on standalone Asio: just enough of RFC 6455 for an app to talk to
// its own local relay. One connection, blocking calls with deadlines, text messages only.
#pragma once

// GCC 12 reports a "potential null pointer dereference" inside Asio's scheduler when it is
// inlined at -O2; the code is Asio's, not ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <asio.hpp>
#pragma GCC diagnostic pop

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "relaycore/status.hpp"

namespace example {

class WsClient {
 public:
  // Connects and completes the opening handshake (a random key, its accept value checked).
  relaycore::Status connect(const std::string& host, std::uint16_t port);

  // Sends one text message as a single masked frame (clients must mask).
  relaycore::Status send_text(std::string_view text);

  // The next text message, reassembled from fragments; pings are answered on the way. Fails on
  // a close frame, end of stream or when `timeout` passes.
  relaycore::Result<std::string> receive_text(std::chrono::milliseconds timeout);

  // Sends a close frame (1000), waits briefly for the server's, and closes the socket.
  void close();

 private:
  relaycore::Status send_frame(std::uint8_t opcode, std::string_view payload);
  // Reads more bytes into buffer_ before the deadline.
  relaycore::Status read_more(std::chrono::steady_clock::time_point deadline);

  asio::io_context io_;
  asio::ip::tcp::socket socket_{io_};
  std::string buffer_;  // received bytes not yet parsed
};

}  // namespace example
