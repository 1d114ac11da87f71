// examples/embedded_local_relay: the program starts a relay on an ephemeral port in a data
// directory of ours, publishes a note to itself over a WebSocket and reads it back.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"

TEST_CASE("embedded local relay: publishes to itself and reads it back", "[examples]") {
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
  CHECK(output.find(R"(< ["OK",")") != std::string::npos);
  CHECK(output.find(R"(",true,""])") != std::string::npos);
  CHECK(output.find(R"(< ["EVENT","mine",{"id":")") != std::string::npos);
  CHECK(output.find(R"(< ["EOSE","mine"])") != std::string::npos);
  // The app's data directory holds the relay's database, kept after exit.
  CHECK(std::filesystem::exists(data + "/relay.db"));
}
