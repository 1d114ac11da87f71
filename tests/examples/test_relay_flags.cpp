// relaycore-relay's rate-limit flags: documented in --help, bad values refused before anything
// is opened, good ones accepted by a relay that then serves.
#include <signal.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"

using relaycore::examples_test::ChildProcess;

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

}  // namespace

TEST_CASE("relaycore-relay: --help documents every rate-limit flag", "[examples]") {
  std::string help;
  CHECK(run_relay({"--help"}, help) == 0);
  for (const char* flag :
       {"--event-rate", "--event-burst", "--req-rate", "--req-burst", "--count-rate",
        "--count-burst", "--pubkey-event-rate", "--pubkey-req-rate", "--pubkey-count-rate",
        "--pubkey-event-burst", "--pubkey-req-burst", "--pubkey-count-burst", "--conns-per-ip",
        "--exempt-ip", "--exempt-pubkey", "--limit-loopback", "--no-rate-limits"}) {
    INFO(flag);
    CHECK(help.find(std::string(" ") + flag + " ") != std::string::npos);
  }
}

TEST_CASE("relaycore-relay: bad rate-limit flags are usage errors", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::vector<std::vector<std::string>> bad = {
      {"--event-rate", "20/d"},        {"--req-rate", "-1/s"},
      {"--count-burst", "many"},       {"--pubkey-event-burst", "99999999999"},
      {"--conns-per-ip", "-1"},        {"--exempt-ip", "10.0.0.0/99"},
      {"--exempt-ip", "relay.local"},  {"--exempt-pubkey", "abcd"},
      {"--pubkey-countx-rate", "1/s"}, {"--event-rate"},
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
