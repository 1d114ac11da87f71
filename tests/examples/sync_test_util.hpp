// What the relaycore-sync tests share: signed notes, databases seeded through a relay and read
// back, relaycore-relay processes, and running the tool to its exit.
#pragma once

#include <signal.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/relay.hpp"

namespace relaycore::sync_test {

using examples_test::ChildProcess;
using namespace std::chrono_literals;

constexpr std::int64_t kBase = 1700000000;

// `n` signed notes from three authors, from kBase + first on; every seventh shares one second
// with its neighbours, so windows meet tie groups.
inline std::vector<EventPtr> notes(int first, int n) {
  static const Keypair authors[3] = {Keypair::generate(), Keypair::generate(), Keypair::generate()};
  std::vector<EventPtr> out;
  for (int i = first; i < first + n; ++i) {
    EventDraft d;
    d.kind = 1;
    d.created_at = kBase + (i % 7 == 0 ? i - i % 70 : i);
    d.content = "note " + std::to_string(i);
    out.push_back(sign_event(authors[i % 3], std::move(d)).value());
  }
  return out;
}

// Stores `events` in the database at `db` through a relay.
inline void seed(const std::string& db, const std::vector<EventPtr>& events) {
  Options o;
  o.sqlite.path = db;
  std::unique_ptr<Relay> relay = Relay::open(std::move(o)).value();
  std::atomic<std::size_t> stored{0};
  for (const EventPtr& e : events) {
    relay->submit_async(e, [&stored](const OkResult& ok) { stored += ok.accepted; });
  }
  REQUIRE(relay->shutdown().is_ok());
  REQUIRE(stored.load() == events.size());
}

// The ids stored in `db`, read with nothing else holding it.
inline std::set<std::string> ids_in(const std::string& db) {
  SqliteOptions o;
  o.path = db;
  std::shared_ptr<Storage> storage = new_sqlite_storage(o).value();
  std::set<std::string> ids;
  QueryRequest request;
  request.max_limit = UINT32_MAX;
  REQUIRE(storage
              ->scan_keys(Filter(), request,
                          [&](const EventKey& k) {
                            ids.insert(to_hex(k.id));
                            return true;
                          })
              .is_ok());
  return ids;
}

inline std::set<std::string> ids_of(const std::vector<EventPtr>& events) {
  std::set<std::string> ids;
  for (const EventPtr& e : events) ids.emplace(e->id_hex());
  return ids;
}

// relaycore-relay on `db`, with its ws:// URL read from its "listening" line.
struct RunningRelay {
  explicit RunningRelay(const std::string& db, std::vector<std::string> extra = {})
      : process([&] {
          std::vector<std::string> argv = {RELAYCORE_RELAY, "--listen", "127.0.0.1:0", "--db", db};
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        }()) {
    REQUIRE(process.started());
    std::optional<std::string> line = process.read_line();
    REQUIRE(line);
    const std::size_t at = line->find("ws://127.0.0.1:");
    REQUIRE(at != std::string::npos);
    url = line->substr(at, line->find(' ', at) - at);
  }
  // Drains and exits, so its database can be read.
  void stop() {
    ::kill(process.pid(), SIGTERM);
    REQUIRE(process.wait() == 0);
  }
  ChildProcess process;
  std::string url;
};

// Runs relaycore-sync to its exit, stderr joined to stdout; the exit code and every line.
inline int run_sync(const std::vector<std::string>& args, std::vector<std::string>& lines) {
  std::vector<std::string> argv = {RELAYCORE_SYNC};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess sync(argv, "/dev/null", /*merge_stderr=*/true);
  REQUIRE(sync.started());
  lines = sync.read_all(60s);
  const int code = sync.wait(60s);
  for (const std::string& l : lines) UNSCOPED_INFO(l);
  return code;
}

inline bool has_line(const std::vector<std::string>& lines, const std::string& needle) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

}  // namespace relaycore::sync_test
