// relaycore-stdio-relay, driven through its stdin and stdout: first as an interactive client
// that waits for each answer, then as a batch fed from a file, where the drain at end of input
// must still print an OK for every EVENT.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"
#include "relaycore/keys.hpp"

namespace {

using relaycore::EventPtr;
using relaycore::examples_test::ChildProcess;

EventPtr note(const relaycore::Keypair& keys, const std::string& content) {
  relaycore::EventDraft d;
  d.created_at = static_cast<std::int64_t>(std::time(nullptr));
  d.content = content;
  d.tags = {{"t", "stdio"}};
  return relaycore::sign_event(keys, std::move(d)).value();
}

std::string event_line(const EventPtr& e) { return R"(["EVENT",)" + std::string(e->json()) + "]"; }

std::string ok_line(const EventPtr& e, bool accepted, const std::string& message) {
  return R"(["OK",")" + std::string(e->id_hex()) + "\"," + (accepted ? "true" : "false") + ",\"" +
         message + "\"]";
}

// The event with the last hex digit of its signature changed: same id, bad signature.
std::string bad_signature_line(const EventPtr& e) {
  std::string line = event_line(e);
  char& digit = line[line.size() - 4];  // before "}]
  digit = digit == '0' ? '1' : '0';
  return line;
}

const std::string kGarbage = "garbage";
const std::string kGarbageNotice = R"(["NOTICE","invalid: malformed JSON"])";

}  // namespace

TEST_CASE("stdio relay: a client that waits for each answer", "[examples]") {
  ChildProcess relay({RELAYCORE_STDIO_RELAY, "--memory"});
  REQUIRE(relay.started());
  auto keys = relaycore::Keypair::generate();
  EventPtr good = note(keys, "hello over stdio");
  EventPtr forged = note(keys, "signed by someone else");
  auto ask = [&](const std::string& line) {
    REQUIRE(relay.write_line(line));
    return relay.read_line().value_or("<no answer>");
  };

  CHECK(ask(event_line(good)) == ok_line(good, true, ""));
  CHECK(ask(event_line(good)) == ok_line(good, true, "duplicate: already have this event"));
  CHECK(ask(bad_signature_line(forged)) == ok_line(forged, false, "invalid: bad signature"));
  CHECK(ask(R"(["REQ","sub",{"kinds":[1],"#t":["stdio"]}])") ==
        R"(["EVENT","sub",)" + std::string(good->json()) + "]");
  CHECK(relay.read_line().value_or("<no answer>") == R"(["EOSE","sub"])");
  CHECK(ask(R"(["COUNT","n",{"kinds":[1]}])") == R"(["COUNT","n",{"count":1}])");
  REQUIRE(relay.write_line(R"(["CLOSE","sub"])"));  // answered by silence
  CHECK(ask(kGarbage) == kGarbageNotice);

  // A note after the CLOSE gets its OK and reaches no subscription.
  EventPtr late = note(keys, "after the close");
  CHECK(ask(event_line(late)) == ok_line(late, true, ""));
  relay.close_stdin();
  CHECK(relay.read_all() == std::vector<std::string>{});
  CHECK(relay.wait() == 0);
}

TEST_CASE("stdio relay: a batch from a file gets every OK before exit", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  auto keys = relaycore::Keypair::generate();
  std::vector<EventPtr> events;
  for (int i = 0; i < 40; ++i) events.push_back(note(keys, "batch note " + std::to_string(i)));

  auto run = [&](const std::vector<std::string>& input) {
    {
      std::ofstream file(dir.file("input.jsonl"));
      for (const std::string& line : input) file << line << "\n";
    }
    ChildProcess relay({RELAYCORE_STDIO_RELAY, "--db", dir.file("events.db")},
                       dir.file("input.jsonl"));
    REQUIRE(relay.started());
    std::vector<std::string> output = relay.read_all();
    CHECK(relay.wait() == 0);
    return output;
  };

  // The OKs come back as each event commits, so compare without order.
  std::vector<std::string> input = {kGarbage};
  std::vector<std::string> expected = {kGarbageNotice};
  for (const EventPtr& e : events) {
    input.push_back(event_line(e));
    expected.push_back(ok_line(e, true, ""));
  }
  std::vector<std::string> output = run(input);
  std::sort(output.begin(), output.end());
  std::sort(expected.begin(), expected.end());
  CHECK(output == expected);

  // A second run on the same database: the events are there.
  output = run({event_line(events[0]), R"(["COUNT","n",{"#t":["stdio"]}])"});
  std::sort(output.begin(), output.end());
  expected = {R"(["COUNT","n",{"count":40}])",
              ok_line(events[0], true, "duplicate: already have this event")};
  std::sort(expected.begin(), expected.end());
  CHECK(output == expected);
}
