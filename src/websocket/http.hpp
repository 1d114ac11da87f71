// The HTTP/1.1 side of the WebSocket code: for the server, parsing a request head, checking an
// RFC 6455 upgrade and writing responses; for the client, the upgrade request and the check of
// the server's answer. Pure functions over strings, so they are tested without sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relaycore/status.hpp"
#include "relaycore/websocket/server.hpp"
#include "util/text.hpp"

namespace relaycore::websocket::detail {

// A request head as parsed; `version` is "HTTP/1.0" or "HTTP/1.1".
struct ParsedRequest {
  HttpRequest request;
  std::string version;
};

// Why a request was refused: the status to answer and a short plain-text body.
struct HttpError {
  int status = 400;
  std::string message;
  // Add "Sec-WebSocket-Version: 13", telling the client which version we speak (RFC 6455 4.4).
  bool version_hint = false;
};

// The offset one past the "\r\n\r\n" that ends the head in `buffer`, or npos.
std::size_t find_head_end(std::string_view buffer) noexcept;

// Parses the request line and headers of `head` (which ends with "\r\n\r\n"). Strict: CRLF line
// ends only, no folded lines, token header names, HTTP/1.0 or 1.1. nullopt means 400.
std::optional<ParsedRequest> parse_request_head(std::string_view head);

// ASCII case-insensitive equality, as header names and tokens compare.
bool iequals(std::string_view a, std::string_view b) noexcept;

// True when the comma-separated header `value` holds `token`, ignoring case.
bool has_token(std::string_view value, std::string_view token) noexcept;

// Checks an upgrade request against RFC 6455 section 4.2.1 and returns the
// Sec-WebSocket-Accept value for its key.
Result<std::string, HttpError> check_upgrade(const ParsedRequest& parsed);

// base64(SHA-1(key + the RFC 6455 GUID)).
std::string accept_key(std::string_view key);

// The 101 response that completes a handshake; `extensions`, when not empty, is the
// Sec-WebSocket-Extensions value of the extensions agreed.
std::string render_switching_protocols(std::string_view accept, std::string_view extensions = {});

// A complete response with Content-Length and "Connection: close". Headers whose name or value
// could split the response (CR, LF, or a bad name) are dropped. `head_only` omits the body.
std::string render_response(const HttpResponse& response, bool head_only);

// A plain-text error response.
std::string render_error(const HttpError& error);

// A ws:// URL split for connecting (wss:// needs TLS, which this target does not have).
struct WsUrl {
  std::string host;
  std::uint16_t port = 80;
  std::string path = "/";  // with the query, if any
};
Result<WsUrl> parse_ws_url(std::string_view url);

// A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
std::string new_client_key();

// A request's extra header fields, as name and value.
using HeaderFields = std::vector<std::pair<std::string, std::string>>;

// "invalid: ..." when a name is not an HTTP token, is one the handshake sets itself (Host,
// Upgrade, Connection, Sec-WebSocket-*), or a value holds a control character (a CR or LF
// would start a header line of its own).
Status check_extra_headers(const HeaderFields& headers);

// The client's upgrade request for `url` with `key`; `extensions`, when not empty, is offered
// as the Sec-WebSocket-Extensions value; `headers` (checked) go after the handshake's own.
std::string render_upgrade_request(const WsUrl& url, std::string_view key,
                                   std::string_view extensions = {},
                                   const HeaderFields& headers = {});

// Checks the server's response head (through "\r\n\r\n") to an upgrade sent with `key`: status
// 101, "Upgrade: websocket", "Connection: upgrade" and the Sec-WebSocket-Accept for the key.
Status check_upgrade_response(std::string_view head, std::string_view key);

}  // namespace relaycore::websocket::detail
