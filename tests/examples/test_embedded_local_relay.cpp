// examples/embedded_local_relay: the program opens a relay in a data directory of ours, serves
// it on an ephemeral port, and uses it in process: subscription, listener, submit, query.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"

TEST_CASE("embedded local relay: publishes in process and sees it in its feed, listener and query",
          "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string data = dir.file("app-data");
  relaycore::examples_test::ChildProcess program({RELAYCORE_EMBEDDED_LOCAL_RELAY, data});
  REQUIRE(program.started());
  std::string output;
  for (const std::string& line : program.read_all()) output += line + "\n";
  INFO(output);
  CHECK(program.wait() == 0);
  CHECK(output.find("local relay on ws://127.0.0.1:") != std::string::npos);
  CHECK(output.find("feed: end of stored notes") != std::string::npos);
  CHECK(output.find("submit: accepted") != std::string::npos);
  CHECK(output.find("\"a note kept by my desktop app's own relay\"") != std::string::npos);
  CHECK(output.find("listener: 1 stored, 0 removed") != std::string::npos);
  CHECK(output.find("query: found the note") != std::string::npos);
  CHECK(output.find("count: 1") != std::string::npos);
  // The app's data directory holds the relay's database, kept after exit.
  CHECK(std::filesystem::exists(data + "/relay.db"));
}
