// relaycore-sync stopped with SIGINT mid-way keeps what it stored and a rerun completes the set
// (NIP-77, and paged REQ with its checkpoint); and a relay that serves events with a bad id or
// a bad signature gets them reported, never stored.
#include <signal.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../conformance/temp_dir.hpp"
#include "relaycore/message.hpp"
#include "relaycore/websocket/server.hpp"
#include "sync_test_util.hpp"

using namespace relaycore;
using namespace relaycore::sync_test;

namespace {

// The number before `key` in the summary line of `direction` ("down: N missing, ..."), not
// in the --verbose lines; -1 when there is none.
long long summary_number(const std::vector<std::string>& lines, const std::string& direction,
                         const std::string& key) {
  for (const std::string& l : lines) {
    if (l.rfind(direction, 0) != 0 || l.find(" missing, ") == std::string::npos) continue;
    const std::size_t at = l.find(key);
    if (at == std::string::npos) continue;
    std::size_t start = l.rfind(", ", at);
    start = start == std::string::npos ? l.find(": ") + 2 : start + 2;
    return std::atoll(l.c_str() + start);
  }
  return -1;
}

// Starts relaycore-sync with --verbose, waits for the first line for which `sentinel` holds,
// sends SIGINT, and returns its exit code and all its lines.
int interrupt_sync(const std::vector<std::string>& args,
                   const std::function<bool(const std::string&)>& sentinel,
                   std::vector<std::string>& lines) {
  std::vector<std::string> argv = {RELAYCORE_SYNC, "--verbose"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess sync(argv, "/dev/null", /*merge_stderr=*/true);
  REQUIRE(sync.started());
  lines.clear();
  for (;;) {
    std::optional<std::string> line = sync.read_line(30s);
    REQUIRE(line);
    lines.push_back(*line);
    if (sentinel(*line)) break;
  }
  ::kill(sync.pid(), SIGINT);
  for (std::string& l : sync.read_all(30s)) lines.push_back(std::move(l));
  for (const std::string& l : lines) UNSCOPED_INFO(l);
  return sync.wait(30s);
}

// Interrupts a `down` into a new database after its first batch or window, checks that exactly
// what it reported stored is in the database, then reruns it to the end.
void interrupt_and_resume(const std::vector<std::string>& relay_flags,
                          const std::vector<std::string>& sync_flags,
                          const std::function<bool(const std::string&)>& sentinel,
                          const std::string& resumed_line) {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::vector<EventPtr> all = notes(0, 3000);
  seed(dir.file("remote.db"), all);
  RunningRelay remote(dir.file("remote.db"), relay_flags);
  const std::string local = dir.file("local.db");

  std::vector<std::string> args = {"down", local, remote.url};
  args.insert(args.end(), sync_flags.begin(), sync_flags.end());
  std::vector<std::string> out;
  REQUIRE(interrupt_sync(args, sentinel, out) == 130);
  CHECK(has_line(out, "interrupted; what was stored stays"));
  const long long stored = summary_number(out, "down: ", " stored");
  CHECK(stored > 0);
  CHECK(stored < 3000);
  const std::set<std::string> kept = ids_in(local);
  CHECK(static_cast<long long>(kept.size()) == stored);
  const std::set<std::string> expected = ids_of(all);
  CHECK(std::includes(expected.begin(), expected.end(), kept.begin(), kept.end()));

  std::vector<std::string> rerun = args;
  REQUIRE(run_sync(rerun, out) == 0);
  if (!resumed_line.empty()) CHECK(has_line(out, resumed_line));
  CHECK(summary_number(out, "down: ", " stored") == 3000 - stored);
  CHECK_FALSE(std::filesystem::exists(local + ".sync-state"));
  remote.stop();
  CHECK(ids_in(local) == expected);
}

// A relay that serves a fixed list of events to every REQ, whatever their ids and signatures,
// and whose NIP-11 document does not list NIP-77.
class LyingRelay final : public websocket::Handler {
 public:
  explicit LyingRelay(std::vector<EventPtr> events) : events_(std::move(events)) {}

  std::shared_ptr<Session> on_open(std::shared_ptr<Connection> connection, ClientInfo) override {
    return std::make_shared<LyingSession>(std::move(connection), events_);
  }

  std::optional<websocket::HttpResponse> on_http(const websocket::HttpRequest&) override {
    websocket::HttpResponse r;
    r.content_type = "application/nostr+json";
    r.body = R"({"name":"liar","supported_nips":[1,11],"limitation":{"max_limit":100}})";
    return r;
  }

 private:
  class LyingSession final : public Session {
   public:
    LyingSession(std::shared_ptr<Connection> connection, const std::vector<EventPtr>& events)
        : connection_(std::move(connection)), events_(events) {}
    void on_message(std::string_view frame) override {
      auto m = parse_client_message(frame);
      if (!m) return;
      if (auto* req = std::get_if<ReqMessage>(&*m)) {
        for (const EventPtr& e : events_) {
          if (matches_any(req->filters, *e)) {
            connection_->send(Frame(event_message(req->sub_id, *e)));
          }
        }
        connection_->send(Frame(eose_message(req->sub_id)));
      }
    }
    void on_drain() override {}
    void on_close() override {}
    std::string auth_challenge() const override { return ""; }

   private:
    std::shared_ptr<Connection> connection_;
    const std::vector<EventPtr>& events_;
  };

  const std::vector<EventPtr> events_;
};

// `json` with the first occurrence of `from` replaced by `to`, parsed but not verified.
EventPtr altered(std::string_view json, const std::string& from, const std::string& to) {
  std::string text(json);
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  return parse_event(text).value();
}

}  // namespace

TEST_CASE(
    "relaycore-sync: SIGINT mid-way keeps what was stored and a rerun completes the set (NIP-77)",
    "[examples][sync]") {
  interrupt_and_resume(
      {}, {"--batch", "50"},
      [](const std::string& line) { return line.rfind("down: 50 of 3000 done", 0) == 0; }, "");
}

TEST_CASE(
    "relaycore-sync: SIGINT mid-way keeps what was stored and a rerun resumes from the "
    "checkpoint (paged REQ)",
    "[examples][sync]") {
  // The first window that moved events.
  interrupt_and_resume(
      {"--neg-max-sessions", "0"}, {"--page", "100"},
      [](const std::string& line) {
        return line.rfind("window ", 0) == 0 && line.find(", down 0,") == std::string::npos;
      },
      "resuming below created_at");
}

TEST_CASE("relaycore-sync: events with a bad id or signature are reported and never stored",
          "[examples][sync]") {
  conformance::TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::vector<EventPtr> good = notes(0, 3);
  // The signature of another event: the id is right, the signature is not.
  const std::string other_sig(good[2]->json().substr(good[2]->json().find("\"sig\":")));
  const std::string own_sig(good[1]->json().substr(good[1]->json().find("\"sig\":")));
  const EventPtr bad_sig = altered(good[1]->json(), own_sig, other_sig);
  // Content changed after signing: the id no longer matches.
  const EventPtr bad_id = altered(good[2]->json(), "\"note 2\"", "\"note 2, edited\"");
  auto handler = std::make_shared<LyingRelay>(std::vector<EventPtr>{good[0], bad_sig, bad_id});
  websocket::ServerOptions options;
  options.port = 0;
  std::unique_ptr<websocket::Server> server = websocket::Server::start(options, handler).value();
  const std::string url = "ws://127.0.0.1:" + std::to_string(server->port());

  const std::string local = dir.file("local.db");
  std::vector<std::string> out;
  CHECK(run_sync({"down", local, url}, out) == 1);
  CHECK(has_line(out, "does not list NIP-77: paged REQ"));
  CHECK(has_line(out, "bad event from " + url + " " + std::string(bad_sig->id_hex()) +
                          ": invalid: bad signature"));
  CHECK(has_line(
      out, "bad event from " + url + " " + std::string(bad_id->id_hex()) + ": invalid: event id"));
  CHECK(has_line(out, "down: 3 missing, 1 received, 1 stored, 0 duplicates, 0 rejected, 2 bad"));
  CHECK(has_line(out, "2 events failed verification, none stored"));
  server->stop();
  CHECK(ids_in(local) == std::set<std::string>{std::string(good[0]->id_hex())});
}
