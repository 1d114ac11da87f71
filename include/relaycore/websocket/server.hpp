// relaycore::websocket: an RFC 6455 WebSocket server on standalone Asio, in its own target so
// hosts that bring their own transport do not pay for it. It hands every text message to a
// relaycore::Session and implements relaycore::Connection for the way back. Plain HTTP GETs on
// the same port go to a handler (NIP-11 documents, /metrics).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relaycore/connection.hpp"
#include "relaycore/export.hpp"
#include "relaycore/status.hpp"

namespace relaycore::websocket {

struct ServerOptions {
  // Address to listen on. Default: "127.0.0.1".
  std::string host = "127.0.0.1";
  // Port; 0 picks a free one (see Server::port()). Default: 7777.
  std::uint16_t port = 7777;
  // I/O threads, and the number of message threads kept for Session calls. Default: 1.
  std::size_t threads = 1;
  // Largest message (after reassembling fragments): the hard cap. A larger one closes the
  // connection with 1009 as soon as its frame headers announce it, before its payload is
  // buffered, so a connection never holds more than this of one message. Messages under it go
  // to the session, which answers those over relaycore's own Limits::max_message_bytes (OK false
  // for an EVENT, NOTICE otherwise) and keeps the connection open; keep this above that limit.
  // Default: 1048576 (1 MiB).
  std::size_t max_message_bytes = 1u << 20;
  // Bytes queued for a peer that has stopped reading before the connection is dropped.
  // Default: 8 MiB (above relaycore's own cap, which acts first).
  std::size_t max_outbound_bytes = 8u << 20;
  // Seconds without any frame from the peer before the connection is closed; a ping is sent
  // halfway. It also bounds the wait for a request head. 0 disables. Default: 300.
  std::uint32_t idle_timeout_seconds = 300;
  // Largest HTTP request head (request line and headers). Default: 8192.
  std::size_t max_http_header_bytes = 8192;
  // Agree to permessage-deflate (RFC 7692) when a client offers it. Compression state is pooled
  // per server, never kept by an idle connection: the server always asks the client for no
  // context takeover, holds a compressor for a connection only while its writes are backed up
  // (a REQ streaming history), and compresses an EVENT sent to many idle subscribers once.
  // Default: true.
  bool permessage_deflate = true;
  // The request header, lowercase, in which a reverse proxy lists the addresses a request came
  // through, client first: "x-forwarded-for" (every proxy appends the address it saw) or
  // "x-real-ip" (nginx's one address). Its value goes to ClientInfo::forwarded_for, which
  // relaycore believes only from the proxies in RateLimits::trusted_proxies. Pick the header
  // the proxy sets: one it passes through untouched is the client's to write. "" reads none.
  // Default: "x-forwarded-for".
  std::string forwarded_header = "x-forwarded-for";
};

// Exported because header() is defined in the library.
struct RELAYCORE_API HttpRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  // The value of the first header named `name` (lowercase), or "".
  std::string header(std::string_view name) const;
  // The values of every header named `name` (lowercase), in order, joined with ", ": one list,
  // as HTTP reads a header that comes several times.
  std::string header_list(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// What the server calls.
// [Threading] on_open() and on_http() run on I/O threads. Each connection lives on one I/O
//   thread, the one with the fewest connections when it arrives. Each message goes first to
//   Session::try_on_message() on that thread, at most 16 of a connection's in a row before the
//   other connections on the thread get their turn; when it declines, that message and the
//   messages after it go to Session::on_message() on a separate message pool. Never
//   concurrently for one connection, always in order, and on_close() exactly once, on the pool,
//   after the last message has been handled.
// [Blocking] on_open() and on_http() should be quick. Session::on_message() may block
//   (back-pressure): that connection stops being read while the rest of the server keeps
//   reading, writing and pinging. Each blocked connection holds one message thread; the pool
//   grows past `threads` when all are busy (up to 64 more), so one blocked client does not stall
//   another.
// [Errors] Exceptions from these calls are caught; a failed on_open() closes with 1011.
class RELAYCORE_API Handler {
 public:
  virtual ~Handler() = default;
  // A WebSocket handshake completed; return the session that receives its messages. The
  // connection's send() and close() may be called from any thread; close("") sends close code
  // 1000, close(reason) 1008 with the reason. A peer whose queued_bytes() would pass
  // max_outbound_bytes is dropped at once.
  virtual std::shared_ptr<Session> on_open(std::shared_ptr<Connection> connection,
                                           ClientInfo client) = 0;
  // A plain HTTP request (no Upgrade header; one with Upgrade must be a valid WebSocket
  // handshake or gets 400). Unanswered requests get 404. Every response ends with
  // "Connection: close" (no keep-alive).
  virtual std::optional<HttpResponse> on_http(const HttpRequest& request) = 0;
};

// Counters since start. Connections are TCP connections, plain HTTP ones included.
// protocol_errors counts bad handshakes and every close with 1002, 1003 or 1007;
// oversize_closes counts 1009 closes and request heads over max_http_header_bytes (431).
// accept_failures counts connections the server could not take in (out of descriptors, say):
// each failed accept is retried after a short pause, so one waiting client may count several.
struct ServerStats {
  std::uint64_t connections_open = 0, connections_total = 0;
  std::uint64_t protocol_errors = 0, oversize_closes = 0, outbound_overflow_closes = 0,
                idle_closes = 0, accept_failures = 0;
};

// `stats` as Prometheus text (relaycore_ws_connections_open, relaycore_ws_closes_total by cause,
// ...), for a host to serve on /metrics after the relay's prometheus_text().
RELAYCORE_API std::string prometheus_text(const ServerStats& stats);

class RELAYCORE_API Server {
 public:
  // Binds and starts the I/O threads.
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options,
                                               std::shared_ptr<Handler> handler);
  virtual ~Server() = default;
  // The bound port (useful with port 0).
  virtual std::uint16_t port() const = 0;
  virtual ServerStats stats() const = 0;
  // Stops accepting, closes every connection with 1001 (going away), waits for every
  // Session::on_close() and joins the threads. Idempotent; the destructor calls it. Must not be
  // called from a Handler or Session callback (it joins the threads they run on).
  virtual void stop() = 0;
};

}  // namespace relaycore::websocket
