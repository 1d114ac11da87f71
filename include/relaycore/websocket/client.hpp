// A small blocking WebSocket client (ws:// only) for apps that talk to a relay, tests and tools.
// It shares the server's framing and HTTP code: masked frames out, unmasked frames in, the
// Sec-WebSocket-Accept check, pings answered, the close handshake, and a message size limit.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relaycore/export.hpp"
#include "relaycore/status.hpp"

namespace relaycore::websocket {

struct ClientOptions {
  // Largest message accepted from the server (after reassembling fragments); a larger one
  // closes the connection with 1009. Default: 16 MiB.
  std::size_t max_message_bytes = 16u << 20;
  // How long connect() waits for TCP and the opening handshake. Default: 5 s.
  std::chrono::milliseconds connect_timeout{5000};
  // Extra header fields for the opening handshake, as name and value (an Authorization a
  // gateway asks for, or a proxy's X-Forwarded-For in tests). connect() refuses names that are
  // not HTTP tokens, values with control characters, and the handshake's own headers.
  // Default: none.
  std::vector<std::pair<std::string, std::string>> headers;
};

// [Threading] One thread at a time; the object is not synchronised.
// [Blocking] connect(), send_text() and close() block on the socket; receive_text() blocks up to
//   its timeout.
// [Ownership] The destructor closes the socket without a close handshake; call close() first
//   for a clean one.
// [Errors] Every failure is a Status ("error: ..."); after the server's close frame or a
//   protocol error, every call fails.
class RELAYCORE_API Client {
 public:
  // Connects to `url` ("ws://host[:port][/path]") and completes the opening handshake.
  static Result<std::unique_ptr<Client>> connect(std::string_view url,
                                                 const ClientOptions& options = ClientOptions());
  virtual ~Client() = default;

  // Sends one text message as a single masked frame.
  virtual Status send_text(std::string_view text) = 0;

  // The next text message. Pings are answered and pongs skipped on the way. Fails on timeout
  // (the connection stays usable), on the server's close frame (answered, "error: closed by the
  // server: <code> <reason>"), on end of stream and on protocol errors.
  virtual Result<std::string> receive_text(std::chrono::milliseconds timeout) = 0;

  // Sends a ping with `payload` (at most 125 bytes); its pong is skipped by receive_text().
  virtual Status ping(std::string_view payload) = 0;

  // The close handshake: sends a close frame with `code`, waits up to `timeout` for the
  // server's, then closes the socket. Idempotent.
  virtual void close(std::uint16_t code = 1000,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) = 0;
};

// The relay's NIP-11 document: an HTTP GET of the URL's host and path ("ws://" read as
// "http://") with "Accept: application/nostr+json", within `options.connect_timeout` and at most
// `options.max_message_bytes`. The body of a 200 answer; "error: ..." otherwise.
RELAYCORE_API Result<std::string> fetch_relay_information(
    std::string_view url, const ClientOptions& options = ClientOptions());

}  // namespace relaycore::websocket
