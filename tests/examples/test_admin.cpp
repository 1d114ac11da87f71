// relaycore-admin run as an operator runs it, on databases a relay wrote: export and import
// round trip, rejections on import, delete with and without --dry-run, stats, verify, and the
// refusal to write while relaycore-relay runs on the database, whose backup stays consistent.
#include <signal.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../conformance/temp_dir.hpp"
#include "child_process.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/websocket/client.hpp"

using relaycore::examples_test::ChildProcess;
using namespace relaycore;
using namespace std::chrono_literals;

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

EventPtr make_event(const Keypair& keys, std::uint16_t kind, std::int64_t created_at,
                    const std::string& content) {
  EventDraft d;
  d.kind = kind;
  d.created_at = created_at;
  d.content = content;
  return sign_event(keys, std::move(d)).value();
}

// Stores `n` events in a new database through a relay: kinds 1 and 7, two authors.
std::vector<std::string> fill(const std::string& db, int n) {
  Options o;
  o.sqlite.path = db;
  std::unique_ptr<Relay> relay = Relay::open(std::move(o)).value();
  const Keypair alice = Keypair::generate();
  const Keypair bob = Keypair::generate();
  std::vector<std::string> ids;
  const std::int64_t now = unix_now();
  std::atomic<int> stored{0};
  for (int i = 0; i < n; ++i) {
    EventPtr e = make_event(i % 2 ? alice : bob, i % 3 == 0 ? 7 : 1, now - i % 500,
                            "note " + std::to_string(i));
    ids.emplace_back(e->id_hex());
    relay->submit_async(e, [&stored](const OkResult& ok) { stored += ok.accepted; });
  }
  REQUIRE(relay->shutdown().is_ok());
  REQUIRE(stored.load() == n);
  return ids;
}

// Runs relaycore-admin to its exit, stderr joined to stdout; the exit code and every line.
int run_admin(const std::vector<std::string>& args, std::vector<std::string>& lines) {
  std::vector<std::string> argv = {RELAYCORE_ADMIN};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess admin(argv, "/dev/null", /*merge_stderr=*/true);
  REQUIRE(admin.started());
  lines = admin.read_all(60s);
  return admin.wait(60s);
}

bool has_line(const std::vector<std::string>& lines, const std::string& needle) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

// The ids of the events in a JSONL file (or in the event lines of an output), sorted.
std::vector<std::string> ids_of(const std::vector<std::string>& lines) {
  std::vector<std::string> ids;
  for (const std::string& line : lines) {
    if (line.empty() || line[0] != '{') continue;
    ids.push_back(std::string(parse_event(line).value()->id_hex()));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("relaycore-admin: export then import into a fresh database gives the same ids",
          "[examples][admin]") {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  // More than one page of the export's storage queries.
  std::vector<std::string> ids = fill(dir.file("a.db"), 2500);
  std::sort(ids.begin(), ids.end());

  std::vector<std::string> out;
  REQUIRE(run_admin({"--db", dir.file("a.db"), "export", "--out", dir.file("a.jsonl")}, out) == 0);
  CHECK(has_line(out, "exported 2500 events"));
  CHECK(ids_of(read_lines(dir.file("a.jsonl"))) == ids);

  REQUIRE(run_admin({"--db", dir.file("b.db"), "import", dir.file("a.jsonl")}, out) == 0);
  CHECK(has_line(out, "stored 2500, duplicates 0, rejected 0"));
  REQUIRE(run_admin({"--db", dir.file("b.db"), "export", "--out", dir.file("b.jsonl")}, out) == 0);
  CHECK(ids_of(read_lines(dir.file("b.jsonl"))) == ids);
  // Newest first, the same order from both.
  CHECK(read_lines(dir.file("b.jsonl")) == read_lines(dir.file("a.jsonl")));

  // Again: all duplicates.
  REQUIRE(run_admin({"--db", dir.file("b.db"), "import", dir.file("a.jsonl")}, out) == 0);
  CHECK(has_line(out, "stored 0, duplicates 2500, rejected 0"));

  // A filter picks what is exported.
  REQUIRE(run_admin({"--db", dir.file("a.db"), "export", "--filter", R"({"kinds":[7]})", "--out",
                     dir.file("k7.jsonl")},
                    out) == 0);
  const std::vector<std::string> k7 = read_lines(dir.file("k7.jsonl"));
  CHECK(k7.size() == 834);
  for (const std::string& line : k7) CHECK(parse_event(line).value()->kind() == 7);
}

TEST_CASE("relaycore-admin: import reports each rejection with its reason", "[examples][admin]") {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const Keypair keys = Keypair::generate();
  EventPtr good = make_event(keys, 1, unix_now(), "good");
  EventPtr victim = make_event(keys, 1, unix_now(), "tampered");
  // The same event with its signature's last hex digit changed.
  std::string forged(victim->json());
  const std::size_t sig = forged.find("\"sig\":\"") + 7 + 127;
  forged[sig] = forged[sig] == '0' ? '1' : '0';
  {
    std::ofstream in(dir.file("in.jsonl"));
    in << good->json() << "\n"
       << forged << "\n"
       << "not json\n";
  }
  std::vector<std::string> out;
  CHECK(run_admin({"--db", dir.file("r.db"), "import", dir.file("in.jsonl")}, out) == 1);
  CHECK(has_line(out, "stored 1, duplicates 0, rejected 2"));
  CHECK(has_line(out, "line 2 " + std::string(victim->id_hex()) + ": invalid: bad signature"));
  CHECK(has_line(out, "line 3: invalid:"));

  REQUIRE(run_admin({"--db", dir.file("r.db"), "export"}, out) == 0);
  CHECK(ids_of(out) == std::vector<std::string>{std::string(good->id_hex())});
}

TEST_CASE("relaycore-admin: delete --dry-run lists, delete removes, stats counts",
          "[examples][admin]") {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string db = dir.file("d.db");
  fill(db, 30);  // kinds: 10 of 7, 20 of 1
  const std::string filter = R"({"kinds":[7]})";

  std::vector<std::string> out;
  REQUIRE(run_admin({"--db", db, "delete", "--filter", filter, "--dry-run"}, out) == 0);
  CHECK(ids_of(out).size() == 10);
  CHECK(has_line(out, "would delete 10 events (dry run: nothing removed)"));
  REQUIRE(run_admin({"--db", db, "stats"}, out) == 0);
  CHECK(has_line(out, "events: 30"));
  CHECK(has_line(out, "  7        10"));
  CHECK(has_line(out, "  1        20"));

  REQUIRE(run_admin({"--db", db, "delete", "--filter", filter}, out) == 0);
  CHECK(has_line(out, "deleted 10 events"));
  REQUIRE(run_admin({"--db", db, "stats"}, out) == 0);
  CHECK(has_line(out, "events: 20"));
  CHECK_FALSE(has_line(out, "  7        "));
  // The measure max-bytes limits: the JSON of the events left, as export writes it.
  std::vector<std::string> exported;
  REQUIRE(run_admin({"--db", db, "export"}, exported) == 0);
  std::size_t json = 0;
  for (const std::string& line : exported) {
    if (!line.empty() && line[0] == '{') json += line.size();
  }
  CHECK(ids_of(exported).size() == 20);
  CHECK(has_line(out, "events' JSON: " + std::to_string(json) + " bytes (what max-bytes limits)"));

  REQUIRE(run_admin({"--db", db, "compact"}, out) == 0);
  CHECK(has_line(out, "size before "));
  REQUIRE(run_admin({"--db", db, "verify"}, out) == 0);
  CHECK(has_line(out, "database: ok"));
  CHECK(run_admin({"--db", dir.file("missing.db"), "stats"}, out) == 1);
  CHECK(has_line(out, "no database at"));
}

TEST_CASE("relaycore-admin: writes are refused while a relay runs; its backup is consistent",
          "[examples][admin]") {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::string db = dir.file("live.db");
  fill(db, 2000);
  ChildProcess relay({RELAYCORE_RELAY, "--listen", "127.0.0.1:0", "--db", db});
  REQUIRE(relay.started());
  std::optional<std::string> line = relay.read_line();
  REQUIRE(line);
  const std::size_t at = line->find("ws://127.0.0.1:");
  REQUIRE(at != std::string::npos);
  const std::string url = line->substr(at, line->find(' ', at) - at);

  std::vector<std::string> out;
  for (const std::vector<std::string>& args : {std::vector<std::string>{"compact"},
                                               {"import", "-"},
                                               {"delete", "--filter", R"({"kinds":[1]})"}}) {
    INFO(args[0]);
    std::vector<std::string> argv = {"--db", db};
    argv.insert(argv.end(), args.begin(), args.end());
    CHECK(run_admin(argv, out) == 1);
    CHECK(has_line(out, "refused: a relay is running on " + db));
  }

  // A client keeps publishing while the backup runs.
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::atomic<int> published{0};
  std::thread writer([&] {
    auto client = websocket::Client::connect(url);
    if (!client) return failed.store(true);
    const Keypair keys = Keypair::generate();
    for (int i = 0; !stop.load(); ++i) {
      EventPtr e = make_event(keys, 1, unix_now(), "live " + std::to_string(i));
      if (!(*client)->send_text("[\"EVENT\"," + std::string(e->json()) + "]")) {
        return failed.store(true);
      }
      Result<std::string> ok = (*client)->receive_text(5000ms);
      if (!ok || ok->find("true") == std::string::npos) return failed.store(true);
      ++published;
    }
  });
  // The backup starts once the relay has committed the client's first event.
  while (published.load() == 0 && !failed.load()) std::this_thread::yield();
  const std::string copy = dir.file("copy.db");
  const int backed_up = run_admin({"--db", db, "backup", "--to", copy}, out);
  stop = true;
  writer.join();
  REQUIRE(backed_up == 0);
  CHECK_FALSE(failed.load());

  // The safe commands run beside the relay; the copy is whole and holds a prefix of history.
  REQUIRE(run_admin({"--db", db, "verify"}, out) == 0);
  CHECK(has_line(out, "database: ok"));
  REQUIRE(run_admin({"--db", db, "export", "--out", dir.file("live.jsonl")}, out) == 0);
  CHECK(read_lines(dir.file("live.jsonl")).size() == 2000 + std::size_t(published.load()));
  REQUIRE(run_admin({"--db", db, "delete", "--filter", R"({"kinds":[7]})", "--dry-run"}, out) == 0);
  CHECK(has_line(out, "would delete 667 events"));
  REQUIRE(run_admin({"--db", copy, "verify"}, out) == 0);
  CHECK(has_line(out, "database: ok"));
  REQUIRE(run_admin({"--db", copy, "export", "--out", dir.file("copy.jsonl")}, out) == 0);
  const std::size_t copied = read_lines(dir.file("copy.jsonl")).size();
  CHECK(copied >= 2000);
  CHECK(copied <= 2000 + static_cast<std::size_t>(published.load()));
  REQUIRE(run_admin({"--db", db, "stats"}, out) == 0);
  CHECK(has_line(out, "events: " + std::to_string(2000 + published.load())));

  ::kill(relay.pid(), SIGTERM);
  CHECK(relay.wait() == 0);
  // With the relay gone, writing commands run again.
  CHECK(run_admin({"--db", db, "compact"}, out) == 0);
}
