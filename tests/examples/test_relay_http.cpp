// relaycore-relay's plain HTTP side: /metrics serves the relay's counters and the WebSocket
// server's together.
#include <signal.h>

#include <catch2/catch.hpp>

#include <string>

#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"
#include "relay_child.hpp"
#include "relaycore/websocket/client.hpp"

using relaycore::examples_test::ChildProcess;
using relaycore::examples_test::http_get;
using relaycore::examples_test::wait_listening;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("relaycore-relay: /metrics has the WebSocket server's counters beside the relay's",
          "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  ChildProcess relay({RELAYCORE_RELAY, "--listen", "127.0.0.1:0", "--db", dir.file("relay.db")});
  REQUIRE(relay.started());
  const std::uint16_t port = wait_listening(relay);
  REQUIRE(port != 0);
  {
    auto client = relaycore::websocket::Client::connect("ws://127.0.0.1:" + std::to_string(port));
    REQUIRE(client);
    // The WebSocket session and the request's own connection are open while it is served.
    const std::string metrics = http_get(port, "/metrics");
    CHECK(has_line(metrics, "relaycore_sessions_open 1"));
    CHECK(has_line(metrics, "relaycore_ws_connections_open 2"));
    CHECK(has_line(metrics, "relaycore_ws_connections_total 2"));
    CHECK(has_line(metrics, "# TYPE relaycore_ws_closes_total counter"));
    CHECK(has_line(metrics, R"(relaycore_ws_closes_total{cause="idle"} 0)"));
    CHECK(has_line(metrics, "relaycore_ws_accept_failures_total 0"));
  }
  ::kill(relay.pid(), SIGTERM);
  CHECK(relay.wait() == 0);
}
