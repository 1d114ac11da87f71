// The WebSocket server's counters as Prometheus text, for a host's /metrics beside the relay's.
#include <string>

#include "relaycore/websocket/server.hpp"
#include "util/prometheus_format.hpp"

namespace relaycore::websocket {

std::string prometheus_text(const ServerStats& s) {
  std::string out;
  out.reserve(1024);
  prometheus::metric(out, "ws_connections_open", "gauge",
                     "Open TCP connections, plain HTTP ones included.", s.connections_open);
  prometheus::metric(out, "ws_connections_total", "counter", "TCP connections taken in.",
                     s.connections_total);
  prometheus::family(out, "ws_closes_total", "counter", "Connections the server ended, by cause.");
  prometheus::labelled(out, "ws_closes_total", "cause", "protocol_error", s.protocol_errors);
  prometheus::labelled(out, "ws_closes_total", "cause", "oversize", s.oversize_closes);
  prometheus::labelled(out, "ws_closes_total", "cause", "outbound_overflow",
                       s.outbound_overflow_closes);
  prometheus::labelled(out, "ws_closes_total", "cause", "idle", s.idle_closes);
  prometheus::metric(out, "ws_accept_failures_total", "counter",
                     "Accepts that failed (out of descriptors, say); each retry counts.",
                     s.accept_failures);
  return out;
}

}  // namespace relaycore::websocket
