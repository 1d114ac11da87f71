// relaycore-sync run as its user runs it: between two relaycore-relay processes (NIP-77, and
// paged REQ when the relay has NIP-77 off), down into a database file, and its usage errors.
#include <signal.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "../conformance/temp_dir.hpp"
#include "sync_test_util.hpp"

using namespace relaycore;
using namespace relaycore::sync_test;

namespace {

// Two relays with overlapping stores synced with `both`: afterwards each holds the union.
void sync_two_relays(const std::vector<std::string>& relay_flags,
                     const std::vector<std::string>& sync_flags, const std::string& mode_line) {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::vector<EventPtr> all = notes(0, 900);
  const std::vector<EventPtr> a(all.begin(), all.begin() + 600);
  const std::vector<EventPtr> b(all.begin() + 300, all.end());
  seed(dir.file("a.db"), a);
  seed(dir.file("b.db"), b);
  RunningRelay relay_a(dir.file("a.db"), relay_flags);
  RunningRelay relay_b(dir.file("b.db"), relay_flags);

  std::vector<std::string> args = {"both", relay_a.url, relay_b.url};
  args.insert(args.end(), sync_flags.begin(), sync_flags.end());
  std::vector<std::string> out;
  REQUIRE(run_sync(args, out) == 0);
  CHECK(has_line(out, mode_line));
  CHECK(has_line(out, "down: 300 missing, 300 received, 300 stored, 0 duplicates, 0 rejected"));
  CHECK(has_line(out, "up: 300 missing, 300 received, 300 stored, 0 duplicates, 0 rejected"));

  // A second run finds nothing to move.
  REQUIRE(run_sync(args, out) == 0);
  CHECK(has_line(out, "down: 0 missing"));
  CHECK(has_line(out, "up: 0 missing"));

  relay_a.stop();
  relay_b.stop();
  CHECK(ids_in(dir.file("a.db")) == ids_of(all));
  CHECK(ids_in(dir.file("b.db")) == ids_of(all));
}

// Seeds a relay with `events`, runs `down` into a new database with `sync_flags` to a
// successful end, and checks that the database then holds exactly `events`. The tool's lines.
std::vector<std::string> down_all(const std::vector<EventPtr>& events,
                                  const std::vector<std::string>& relay_flags,
                                  const std::vector<std::string>& sync_flags) {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  seed(dir.file("remote.db"), events);
  RunningRelay remote(dir.file("remote.db"), relay_flags);
  std::vector<std::string> args = {"down", dir.file("local.db"), remote.url};
  args.insert(args.end(), sync_flags.begin(), sync_flags.end());
  std::vector<std::string> out;
  REQUIRE(run_sync(args, out) == 0);
  const std::string all = std::to_string(events.size());
  CHECK(has_line(out, "down: " + all + " missing, " + all + " received, " + all + " stored"));
  remote.stop();
  CHECK(ids_in(dir.file("local.db")) == ids_of(events));
  return out;
}

}  // namespace

TEST_CASE("relaycore-sync: two relays end up with the same set (NIP-77)", "[examples][sync]") {
  sync_two_relays({}, {}, "lists NIP-77: negentropy");
}

TEST_CASE("relaycore-sync: two relays end up with the same set (paged REQ, NIP-77 off)",
          "[examples][sync]") {
  // Windows of 40 events: full windows are halved, and tie groups of 10 at one second fit.
  sync_two_relays({"--neg-max-sessions", "0"}, {"--page", "40"}, "does not list NIP-77: paged REQ");
}

TEST_CASE("relaycore-sync: a NEG-OPEN refused as too large falls back to paged REQ",
          "[examples][sync]") {
  const std::vector<std::string> out = down_all(notes(0, 300), {"--neg-max-records", "100"}, {});
  CHECK(has_line(out, "lists NIP-77: negentropy"));
  CHECK(has_line(out, "negentropy refused (blocked: "));
}
TEST_CASE("relaycore-sync: a tie group larger than a page is read whole", "[examples][sync]") {
  // 60 events at one second, with --page 20: the one-second window is read again with the
  // relay's max_limit.
  std::vector<EventPtr> events;
  const Keypair keys = Keypair::generate();
  for (int i = 0; i < 60; ++i) {
    EventDraft d;
    d.kind = 1;
    d.created_at = kBase;
    d.content = "tie " + std::to_string(i);
    events.push_back(sign_event(keys, std::move(d)).value());
  }
  const std::vector<std::string> out =
      down_all(events, {"--neg-max-sessions", "0"}, {"--page", "20"});
  CHECK_FALSE(has_line(out, "cannot be paged"));
}
TEST_CASE("relaycore-sync: REQs closed as rate-limited are asked again", "[examples][sync]") {
  const std::vector<std::string> out = down_all(
      notes(0, 100),
      {"--neg-max-sessions", "0", "--limit-loopback", "--req-rate", "20/s", "--req-burst", "10"},
      {"--page", "20", "--verbose"});
  CHECK(has_line(out, ": rate-limited: "));
}
TEST_CASE("relaycore-sync: down into a database file, refused while a relay holds it",
          "[examples][sync]") {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::vector<EventPtr> all = notes(0, 800);
  const std::vector<EventPtr> theirs(all.begin() + 100, all.end());
  const std::vector<EventPtr> ours(all.begin(), all.begin() + 150);
  seed(dir.file("remote.db"), theirs);
  seed(dir.file("local.db"), ours);
  RunningRelay remote(dir.file("remote.db"));

  std::vector<std::string> out;
  {
    RunningRelay holder(dir.file("local.db"));
    CHECK(run_sync({"down", dir.file("local.db"), remote.url}, out) == 1);
    CHECK(has_line(out, "refused: a relay is running on " + dir.file("local.db")));
    holder.stop();
  }
  REQUIRE(run_sync({"down", dir.file("local.db"), remote.url}, out) == 0);
  CHECK(has_line(out, "down: 650 missing, 650 received, 650 stored"));
  CHECK_FALSE(has_line(out, "up:"));
  remote.stop();
  CHECK(ids_in(dir.file("local.db")) == ids_of(all));
  // down leaves the remote as it was.
  CHECK(ids_in(dir.file("remote.db")) == ids_of(theirs));
}

TEST_CASE("relaycore-sync: up from a database counts what the relay stored and rejected",
          "[examples][sync]") {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  // The remote takes content of at most 100 bytes and serves 50 events per query.
  {
    std::ofstream config(dir.file("relay.toml"));
    config << "[limits]\nmax-content-bytes = 100\nmax-limit = 50\n";
  }
  std::vector<EventPtr> ours = notes(0, 200);
  const std::vector<EventPtr> theirs(ours.begin(), ours.begin() + 50);
  const Keypair keys = Keypair::generate();
  for (int i = 0; i < 5; ++i) {
    EventDraft d;
    d.kind = 1;
    d.created_at = kBase + i;
    d.content = std::string(200, 'x') + std::to_string(i);
    ours.push_back(sign_event(keys, std::move(d)).value());
  }
  seed(dir.file("local.db"), ours);
  seed(dir.file("remote.db"), theirs);
  RunningRelay remote(dir.file("remote.db"), {"--config", dir.file("relay.toml")});

  std::vector<std::string> out;
  CHECK(run_sync({"up", dir.file("local.db"), remote.url}, out) == 1);
  CHECK(has_line(out, "up: 155 missing, 155 received, 150 stored, 0 duplicates, 5 rejected"));
  CHECK(has_line(out, "  up rejected: 5  invalid: "));
  CHECK(has_line(out, "5 events were rejected"));
  CHECK_FALSE(has_line(out, "down:"));
  // A second run finds only the five the relay will not take.
  CHECK(run_sync({"up", dir.file("local.db"), remote.url, "--no-negentropy"}, out) == 1);
  CHECK(has_line(out, "up: 5 missing, 5 received, 0 stored, 0 duplicates, 5 rejected"));
  remote.stop();
  CHECK(ids_in(dir.file("remote.db")) ==
        ids_of(std::vector<EventPtr>(ours.begin(), ours.begin() + 200)));
}

TEST_CASE("relaycore-sync: usage errors exit 2", "[examples][sync]") {
  std::vector<std::string> out;
  CHECK(run_sync({}, out) == 2);
  CHECK(run_sync({"sideways", "a.db", "ws://127.0.0.1:1"}, out) == 2);
  CHECK(run_sync({"down", "a.db", "http://127.0.0.1:1"}, out) == 2);
  CHECK(run_sync({"down", "a.db", "wss://relay.example"}, out) == 2);
  CHECK(has_line(out, "wss:// needs TLS"));
  CHECK(run_sync({"down", "a.db", "ws://127.0.0.1:1", "--filter", "{\"limit\":5}"}, out) == 2);
  CHECK(run_sync({"down", "a.db", "ws://127.0.0.1:1", "--page", "0"}, out) == 2);
  CHECK(run_sync({"--help"}, out) == 0);
  CHECK(has_line(out, "usage: relaycore-sync down|up|both LOCAL REMOTE"));
}
