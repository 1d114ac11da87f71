// relaycore-relay --config: a TOML file sets what the flags set and more, flags override it,
// mistakes stop the relay with exit code 2 naming the key and the line, and SIGHUP applies a
// changed file to a running relay without dropping its connections.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"
#include "config.hpp"
#include "relay_child.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/websocket/client.hpp"

using relaycore::examples_test::ChildProcess;
using relaycore::examples_test::http_get;
using relaycore::examples_test::wait_for_line;
using relaycore::examples_test::wait_listening;
using namespace std::chrono_literals;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// The NIP-11 document, over a plain HTTP GET; "" when the request failed.
std::string nip11(std::uint16_t port) { return http_get(port, "/", "application/nostr+json"); }

// Runs the relay to its exit with stderr joined to stdout; the exit code and every line.
int run_relay(const std::vector<std::string>& args, std::string& output) {
  std::vector<std::string> argv = {RELAYCORE_RELAY};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess relay(argv, "", /*merge_stderr=*/true);
  REQUIRE(relay.started());
  for (const std::string& line : relay.read_all()) output += line + "\n";
  return relay.wait();
}

// Sends REQ `sub` and waits for its EOSE on the same connection.
bool req_eose(relaycore::websocket::Client& client, const std::string& sub) {
  if (!client.send_text(R"(["REQ",")" + sub + R"(",{"kinds":[1]}])")) return false;
  for (int i = 0; i < 10; ++i) {
    relaycore::Result<std::string> text = client.receive_text(5000ms);
    if (!text) return false;
    if (*text == R"(["EOSE",")" + sub + R"("])") return true;
  }
  return false;
}

// The ids of the kind 1 events a REQ returns before its EOSE; nullopt when the REQ failed.
std::optional<std::vector<std::string>> kind1_ids(relaycore::websocket::Client& client,
                                                  const std::string& sub) {
  if (!client.send_text(R"(["REQ",")" + sub + R"(",{"kinds":[1]}])")) return std::nullopt;
  std::vector<std::string> ids;
  for (;;) {
    relaycore::Result<std::string> text = client.receive_text(5000ms);
    if (!text) return std::nullopt;
    if (*text == R"(["EOSE",")" + sub + R"("])") break;
    const std::size_t at = text->find(R"("id":")");
    if (at != std::string::npos) ids.push_back(text->substr(at + 6, 64));
  }
  if (!client.send_text(R"(["CLOSE",")" + sub + R"("])")) return std::nullopt;
  return ids;
}

relaycore::EventPtr kind1(const relaycore::Keypair& keys, std::int64_t created_at) {
  relaycore::EventDraft d;
  d.kind = 1;
  d.created_at = created_at;
  d.content = "note from " + std::to_string(created_at);
  return relaycore::sign_event(keys, std::move(d)).value();
}

}  // namespace

TEST_CASE("relaycore-relay: the [retention] keys become the relay's rules", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string config = dir.file("relay.toml");
  write_file(config,
             "[retention]\n"
             "max-age = [\"1: 30d\", \"7,9-10: 12h\", \"30000-39999: 90d\"]\n"
             "max-per-author = [\"1,6-7: 500\"]\n"
             "max-bytes = 53687091200\n"
             "batch-size = 64\n"
             "interval-seconds = 5\n");
  std::vector<std::string> errors;
  bool help = false;
  relaycore::relay_example::Config c =
      relaycore::relay_example::load_config(config, {}, errors, help);
  REQUIRE(errors.empty());
  using relaycore::KindRange;
  using relaycore::MaxAgeRule;
  const relaycore::RetentionRules& r = c.options.retention;
  CHECK(r.max_age == std::vector<MaxAgeRule>{{{1, 1}, 30 * 86400},
                                             {{7, 7}, 12 * 3600},
                                             {{9, 10}, 12 * 3600},
                                             {{30000, 39999}, 90 * 86400}});
  REQUIRE(r.max_per_author.size() == 1);
  CHECK(r.max_per_author[0].kinds == std::vector<KindRange>{{1, 1}, {6, 7}});
  CHECK(r.max_per_author[0].max_events == 500);
  CHECK(r.max_bytes == 53687091200ull);
  CHECK(r.batch_size == 64);
  CHECK(r.interval_seconds == 5);
  CHECK(relaycore::validate_retention(r).is_ok());
}

TEST_CASE("relaycore-relay: [compression] switches permessage-deflate; the flag overrides it",
          "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string config = dir.file("relay.toml");
  write_file(config, "[compression]\npermessage-deflate = \"off\"\n");
  std::vector<std::string> errors;
  bool help = false;
  relaycore::relay_example::Config c =
      relaycore::relay_example::load_config(config, {}, errors, help);
  REQUIRE(errors.empty());
  CHECK_FALSE(c.permessage_deflate);
  c = relaycore::relay_example::load_config(config, {"--permessage-deflate", "on"}, errors, help);
  REQUIRE(errors.empty());
  CHECK(c.permessage_deflate);

  // Outside its section the key is unknown, and said to be.
  write_file(config, "permessage-deflate = \"off\"\n");
  relaycore::relay_example::load_config(config, {}, errors, help);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("permessage-deflate") != std::string::npos);
}

TEST_CASE("relaycore-relay: SIGHUP applies new retention rules to a running relay", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string config = dir.file("relay.toml");
  const std::string head = "listen = \"127.0.0.1:0\"\ndb = \"" + dir.file("relay.db") + "\"\n";
  write_file(config, head + "[retention]\n");
  ChildProcess relay({RELAYCORE_RELAY, "--config", config}, "", /*merge_stderr=*/true);
  REQUIRE(relay.started());
  const std::uint16_t port = wait_listening(relay);
  REQUIRE(port != 0);
  auto client = relaycore::websocket::Client::connect("ws://127.0.0.1:" + std::to_string(port));
  REQUIRE(client.is_ok());

  const relaycore::Keypair keys = relaycore::Keypair::generate();
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  relaycore::EventPtr old = kind1(keys, now - 40 * 86400);
  relaycore::EventPtr fresh = kind1(keys, now);
  for (const relaycore::EventPtr& e : {old, fresh}) {
    REQUIRE((*client)->send_text("[\"EVENT\"," + std::string(e->json()) + "]"));
    relaycore::Result<std::string> ok = (*client)->receive_text(5000ms);
    REQUIRE(ok.is_ok());
    CHECK(ok->find("true") != std::string::npos);
  }
  CHECK(kind1_ids(**client, "before").value().size() == 2);

  write_file(config, head + "[retention]\nmax-age = [\"1: 30d\"]\n");
  ::kill(relay.pid(), SIGHUP);
  std::string log;
  REQUIRE(wait_for_line(relay, "SIGHUP: reloaded", log));
  CHECK(log.find("changed: max-age") != std::string::npos);
  // The writer removes the old note at its next idle moment; the fresh one stays.
  std::vector<std::string> left;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
    left = kind1_ids(**client, "after" + std::to_string(i)).value();
    if (left.size() < 2) break;
    std::this_thread::sleep_for(20ms);  // between polls
  }
  CHECK(left == std::vector<std::string>{std::string(fresh->id_hex())});

  (*client)->close();
  ::kill(relay.pid(), SIGTERM);
  CHECK(relay.wait() == 0);
}

TEST_CASE("relaycore-relay: a config file sets the relay up", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string config = dir.file("relay.toml");
  write_file(config,
             "listen = \"127.0.0.1:0\"\n"
             "db = \"" +
                 dir.file("file.db") +
                 "\"\n"
                 "threads = 1\n"
                 "[limits]\n"
                 "max-subscriptions = 7\n"
                 "[rate-limits]\n"
                 "event-rate = \"5/m\"\n"
                 "exempt-ip = [\"10.0.0.0/8\"]\n"
                 "[info]\n"
                 "name = \"configured relay\"\n"
                 "posting-policy = \"https://relay.example.com/policy\"\n"
                 "[retention]\n");

  SECTION("from the file alone") {
    ChildProcess relay({RELAYCORE_RELAY, "--config", config});
    REQUIRE(relay.started());
    const std::uint16_t port = wait_listening(relay);
    REQUIRE(port != 0);
    const std::string info = nip11(port);
    CHECK(info.find(R"("name":"configured relay")") != std::string::npos);
    CHECK(info.find(R"("posting_policy":"https://relay.example.com/policy")") != std::string::npos);
    CHECK(info.find(R"("max_subscriptions":7)") != std::string::npos);
    CHECK(std::filesystem::exists(dir.file("file.db")));
    ::kill(relay.pid(), SIGTERM);
    CHECK(relay.wait() == 0);
  }

  SECTION("flags override the file") {
    ChildProcess relay({RELAYCORE_RELAY, "--db", dir.file("flag.db"), "--config", config});
    REQUIRE(relay.started());
    const std::uint16_t port = wait_listening(relay);
    REQUIRE(port != 0);
    CHECK(std::filesystem::exists(dir.file("flag.db")));
    CHECK_FALSE(std::filesystem::exists(dir.file("file.db")));
    // What the flags leave alone still comes from the file.
    CHECK(nip11(port).find(R"("max_subscriptions":7)") != std::string::npos);
    ::kill(relay.pid(), SIGTERM);
    CHECK(relay.wait() == 0);
  }
}

TEST_CASE("relaycore-relay: config mistakes exit 2 naming the key and the line", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string config = dir.file("relay.toml");
  const std::string db_line = "db = \"" + dir.file("relay.db") + "\"\n";
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {db_line + "[limits]\nmax-subscriptions = 4\nbogus = 1\n",
       "relay.toml:4: unknown key \"limits.bogus\""},
      {db_line + "[limits]\nevent-rate = \"1/s\"\n",
       "relay.toml:3: unknown key \"limits.event-rate\" (it belongs in [rate-limits])"},
      {db_line + "[compression]\nlevel = 5\n", "relay.toml:3: unknown key \"compression.level\""},
      {db_line + "[retention]\nmax-age = 5\n",
       "relay.toml:3: retention.max-age: wants an array of strings"},
      {db_line + "[retention]\nmax-age = [\"1: 30\"]\n",
       "relay.toml:3: retention.max-age: wants an age such as 30d, 12h, 90m or 3600s, got \"30\""},
      {db_line + "[retention]\n\nmax-age = [\"5-1: 1d\"]\n",
       "relay.toml:4: retention.max-age: kinds 5-1 run backwards"},
      {db_line + "[retention]\nmax-age = [\"1 30d\"]\n",
       "relay.toml:3: retention.max-age: wants \"KINDS: AGE\", got \"1 30d\""},
      {db_line + "[retention]\nmax-per-author = [\"1000-1999: 5\"]\n",
       "relay.toml:3: retention.max-per-author: retention: a max-per-author rule names more "
       "than 256 kinds"},
      {db_line + "[retention]\nmax-per-author = [\"x: 5\"]\n",
       "relay.toml:3: retention.max-per-author: \"x\" is not a kind"},
      {db_line + "[retention]\nbatch-size = 0\n",
       "relay.toml:3: retention.batch-size: wants 1 to 1048576, got \"0\""},
      {db_line + "[nonsense]\n", "relay.toml:2: unknown section [nonsense]"},
      {db_line + "threads = 0\n", "relay.toml:2: threads: wants 1 to 256, got \"0\""},
      {db_line + "\n[rate-limits]\nreq-rate = \"9/d\"\n",
       "relay.toml:4: rate-limits.req-rate: \"9/d\" is not a rate"},
      {db_line + "[info]\nname = 5\n", "relay.toml:3: info.name: wants a string"},
      {db_line + "[rate-limits]\nexempt-ip = [\"relay.local\"]\n",
       "relay.toml:3: rate-limits.exempt-ip:"},
      {db_line + "listen = [\n", "relay.toml:2:"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    write_file(config, c.text);
    std::string output;
    CHECK(run_relay({"--config", config, "--listen", "127.0.0.1:0"}, output) == 2);
    CHECK(output.find(c.error) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("relay.db")));
  }
}

TEST_CASE("relaycore-relay: SIGHUP applies a changed config and keeps connections open",
          "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string config = dir.file("relay.toml");
  const std::string head = "listen = \"127.0.0.1:0\"\ndb = \"" + dir.file("relay.db") + "\"\n";
  write_file(config, head + "threads = 1\n[info]\nname = \"before\"\n");
  ChildProcess relay({RELAYCORE_RELAY, "--config", config}, "", /*merge_stderr=*/true);
  REQUIRE(relay.started());
  const std::uint16_t port = wait_listening(relay);
  REQUIRE(port != 0);
  CHECK(nip11(port).find(R"("name":"before")") != std::string::npos);

  auto client = relaycore::websocket::Client::connect("ws://127.0.0.1:" + std::to_string(port));
  REQUIRE(client.is_ok());
  REQUIRE(req_eose(**client, "a"));

  // A live change (the name, a limit) and one that needs a restart (threads).
  write_file(config, head +
                         "threads = 2\n[limits]\nmax-subscriptions = 9\n"
                         "[info]\nname = \"after\"\ncontact = \"ops@example.com\"\n");
  ::kill(relay.pid(), SIGHUP);
  std::string log;
  REQUIRE(wait_for_line(relay, "SIGHUP: reloaded", log));
  CHECK(log.find("threads changed; it takes effect when the relay is restarted") !=
        std::string::npos);
  CHECK(log.find("changed: max-subscriptions, name, contact") != std::string::npos);
  const std::string info = nip11(port);
  CHECK(info.find(R"("name":"after")") != std::string::npos);
  CHECK(info.find(R"("contact":"ops@example.com")") != std::string::npos);
  CHECK(info.find(R"("max_subscriptions":9)") != std::string::npos);
  // The connection opened before the reload is still served.
  CHECK(req_eose(**client, "b"));

  // A broken file changes nothing, and the relay keeps running.
  write_file(config, head + "[info]\nname = 12\n");
  ::kill(relay.pid(), SIGHUP);
  REQUIRE(wait_for_line(relay, "not applied", log));
  CHECK(log.find("relay.toml:4: info.name: wants a string") != std::string::npos);
  CHECK(nip11(port).find(R"("name":"after")") != std::string::npos);
  CHECK(req_eose(**client, "c"));

  (*client)->close();
  ::kill(relay.pid(), SIGTERM);
  CHECK(relay.wait() == 0);
}

// The first ```toml block of docs/operations.md.
std::string sample_config() {
  std::ifstream doc(RELAYCORE_DOCS_DIR "/operations.md");
  std::string sample;
  bool inside = false;
  for (std::string line; std::getline(doc, line);) {
    if (!inside && line == "```toml") {
      inside = true;
    } else if (inside && line == "```") {
      break;
    } else if (inside) {
      sample += line + "\n";
    }
  }
  return sample;
}

TEST_CASE("relaycore-relay: the sample config in docs/operations.md has every key", "[examples]") {
  const std::string sample = sample_config();
  REQUIRE_FALSE(sample.empty());
  std::string section;
  std::vector<std::string> keys;  // "section.name" as the sample lists them
  std::istringstream lines(sample);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
    } else {
      keys.push_back(section + "." + line.substr(0, line.find(' ')));
    }
  }
  for (const std::string& s : relaycore::relay_example::config_sections()) {
    INFO(s);
    CHECK(sample.find("\n[" + s + "]\n") != std::string::npos);
  }
  std::vector<std::string> expected;
  for (const relaycore::relay_example::SettingInfo& s : relaycore::relay_example::setting_infos()) {
    expected.push_back(s.section + "." + s.name);
  }
  std::sort(keys.begin(), keys.end());
  std::sort(expected.begin(), expected.end());
  CHECK(keys == expected);
}

TEST_CASE("relaycore-relay: the sample config in docs/operations.md is accepted", "[examples]") {
  relaycore::conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string sample = sample_config();
  REQUIRE(sample.find("[retention]") != std::string::npos);
  write_file(dir.file("sample.toml"), sample);
  // Flags override the file's listen and db.
  ChildProcess relay({RELAYCORE_RELAY, "--config", dir.file("sample.toml"), "--listen",
                      "127.0.0.1:0", "--db", dir.file("relay.db")});
  REQUIRE(relay.started());
  const std::uint16_t port = wait_listening(relay);
  REQUIRE(port != 0);
  CHECK(nip11(port).find(R"("name":"relaycore")") != std::string::npos);
  ::kill(relay.pid(), SIGTERM);
  CHECK(relay.wait() == 0);
}
