// relaycore-relay's rate-limit flags: documented in --help, bad values refused before anything
// is opened, good ones accepted by a relay that then serves.
#include <signal.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"
#include "relay_child.hpp"
#include "relaycore/websocket/client.hpp"

using relaycore::examples_test::ChildProcess;
using relaycore::examples_test::wait_listening;

namespace {

// Runs the relay with `args` to its exit; its stdout, joined.
int run_relay(const std::vector<std::string>& args, std::string& output) {
  std::vector<std::string> argv = {RELAYCORE_RELAY};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess relay(argv);
  REQUIRE(relay.started());
  for (const std::string& line : relay.read_all()) output += line + "\n";
  return relay.wait();
}

// A client on the relay at `port` as if through a proxy that sent `forwarded_for`
// ("" sends no header).
std::unique_ptr<relaycore::websocket::Client> via_proxy(std::uint16_t port,
                                                        const std::string& forwarded_for) {
  relaycore::websocket::ClientOptions options;
  if (!forwarded_for.empty()) options.headers = {{"X-Forwarded-For", forwarded_for}};
  auto c = relaycore::websocket::Client::connect("ws://127.0.0.1:" + std::to_string(port), options);
  REQUIRE(c);
  return std::move(c).value();
}

// Sends a REQ; true when the relay answers with EOSE, false when with a rate-limited CLOSED.
bool req_served(relaycore::websocket::Client& c, const std::string& sub) {
  REQUIRE(c.send_text("[\"REQ\",\"" + sub + "\",{\"kinds\":[1],\"limit\":1}]"));
  relaycore::Result<std::string> reply = c.receive_text(std::chrono::seconds(10));
  REQUIRE(reply);
  INFO(*reply);
  if (reply->rfind("[\"EOSE\",\"" + sub + "\"]", 0) == 0) return true;
  CHECK(reply->rfind("[\"CLOSED\",\"" + sub + "\",\"rate-limited: ", 0) == 0);
  return false;
}

}  // namespace

TEST_CASE("relaycore-relay: --help documents every rate-limit flag", "[examples]") {
  std::string help;
  CHECK(run_relay({"--help"}, help) == 0);
  for (const char* flag :
       {"--event-rate", "--event-burst", "--req-rate", "--req-burst", "--count-rate",
        "--count-burst", "--pubkey-event-rate", "--pubkey-req-rate", "--pubkey-count-rate",
        "--pubkey-event-burst", "--pubkey-req-burst", "--pubkey-count-burst", "--conns-per-ip",
        "--exempt-ip", "--exempt-pubkey", "--limit-loopback", "--no-rate-limits", "--trusted-proxy",
        "--forwarded-header"}) {
    INFO(flag);
    CHECK(help.find(std::string(" ") + flag + " ") != std::string::npos);
  }
}

TEST_CASE("relaycore-relay: bad rate-limit flags are usage errors", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::vector<std::vector<std::string>> bad = {
      {"--event-rate", "20/d"},
      {"--req-rate", "-1/s"},
      {"--count-burst", "many"},
      {"--pubkey-event-burst", "99999999999"},
      {"--conns-per-ip", "-1"},
      {"--exempt-ip", "10.0.0.0/99"},
      {"--exempt-ip", "relay.local"},
      {"--exempt-pubkey", "abcd"},
      {"--pubkey-countx-rate", "1/s"},
      {"--event-rate"},
      {"--trusted-proxy", "proxy.local"},
      {"--trusted-proxy", "127.0.0.1/40"},
      {"--forwarded-header", "X Forwarded"},
      {"--forwarded-header", "X-Real-IP:"},
  };
  for (std::vector<std::string> args : bad) {
    INFO(args[0] << " " << (args.size() > 1 ? args[1] : ""));
    args.insert(args.end(), {"--listen", "127.0.0.1:0", "--db", dir.file("relay.db")});
    std::string output;
    CHECK(run_relay(args, output) == 2);
  }
  // Refused before the database was created.
  CHECK_FALSE(std::filesystem::exists(dir.file("relay.db")));
}

TEST_CASE("relaycore-relay: a relay starts with every rate-limit flag set", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  ChildProcess relay({RELAYCORE_RELAY,      "--listen",
                      "127.0.0.1:0",        "--db",
                      dir.file("relay.db"), "--no-rate-limits",
                      "--event-rate",       "5/m",
                      "--event-burst",      "3",
                      "--req-rate",         "off",
                      "--count-rate",       "0.5",
                      "--pubkey-req-rate",  "100/h",
                      "--pubkey-req-burst", "7",
                      "--conns-per-ip",     "4",
                      "--exempt-ip",        "10.0.0.0/8",
                      "--exempt-ip",        "2001:db8::/32",
                      "--exempt-pubkey",    std::string(64, 'a'),
                      "--limit-loopback"});
  REQUIRE(relay.started());
  std::optional<std::string> line = relay.read_line();
  REQUIRE(line);
  CHECK(line->find("relaycore-relay listening on ws://127.0.0.1:") == 0);
  ::kill(relay.pid(), SIGTERM);
  CHECK(relay.wait() == 0);
}

TEST_CASE(
    "relaycore-relay: behind a --trusted-proxy, clients are limited by the address it forwards",
    "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  ChildProcess relay({RELAYCORE_RELAY, "--listen", "127.0.0.1:0", "--db", dir.file("relay.db"),
                      "--req-rate", "1/h", "--req-burst", "1", "--trusted-proxy", "127.0.0.1"});
  REQUIRE(relay.started());
  const std::uint16_t port = wait_listening(relay);
  REQUIRE(port != 0);
  auto a = via_proxy(port, "203.0.113.7");
  CHECK(req_served(*a, "a1"));
  CHECK_FALSE(req_served(*a, "a2"));
  // Another client through the same proxy has a bucket of its own.
  auto b = via_proxy(port, "203.0.113.8");
  CHECK(req_served(*b, "b1"));
  // An address the client wrote in front of its own is not believed.
  auto forged = via_proxy(port, "198.51.100.1, 203.0.113.7");
  CHECK_FALSE(req_served(*forged, "f1"));
  // The proxy's own requests come from loopback, which stays exempt.
  auto own = via_proxy(port, "");
  CHECK(req_served(*own, "o1"));
  CHECK(req_served(*own, "o2"));
  ::kill(relay.pid(), SIGTERM);
  CHECK(relay.wait() == 0);
}

TEST_CASE("relaycore-relay: without --trusted-proxy, forwarding headers are ignored",
          "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  ChildProcess relay({RELAYCORE_RELAY, "--listen", "127.0.0.1:0", "--db", dir.file("relay.db"),
                      "--req-rate", "1/h", "--req-burst", "1", "--limit-loopback"});
  REQUIRE(relay.started());
  const std::uint16_t port = wait_listening(relay);
  REQUIRE(port != 0);
  auto a = via_proxy(port, "203.0.113.7");
  CHECK(req_served(*a, "a1"));
  // Every client is 127.0.0.1, whatever its header says.
  auto b = via_proxy(port, "203.0.113.8");
  CHECK_FALSE(req_served(*b, "b1"));
  ::kill(relay.pid(), SIGTERM);
  CHECK(relay.wait() == 0);
}
