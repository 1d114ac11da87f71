// The process the crash test kills. It opens a relay on SQLite (synchronous=FULL) with the
// hash-chained audit log in `dir`, ingests signed events as fast as it can with many in
// flight, and prints the id of every event that got OK true, one per line, only after the OK.
// The parent kills it with SIGKILL at a random moment and checks what survived.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "relaycore/keys.hpp"
#include "relaycore/relay.hpp"

using namespace relaycore;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: crash_child DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  Options options;
  options.sqlite.path = dir + "/events.db";
  SqliteAuditOptions audit_options;
  audit_options.path = dir + "/audit.db";
  Result<std::shared_ptr<AuditSink>> audit = new_sqlite_audit_log(audit_options);
  if (!audit) {
    std::fprintf(stderr, "%s\n", audit.error().message().c_str());
    return 1;
  }
  options.audit = audit.value();
  options.verify_threads = 1;
  Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(options));
  if (!relay) {
    std::fprintf(stderr, "%s\n", relay.error().message().c_str());
    return 1;
  }
  Keypair keys = Keypair::generate();
  std::atomic<int> in_flight{0};
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  for (std::uint64_t i = 0;; ++i) {
    while (in_flight.load() > 256) std::this_thread::sleep_for(std::chrono::microseconds(50));
    EventDraft draft;
    draft.created_at = now;
    // Mix in replaceable events so replacement and its audit records are exercised too.
    draft.kind = (i % 10 == 0) ? 10002 : 1;
    draft.content = "crash test event " + std::to_string(i);
    EventPtr event = sign_event(keys, std::move(draft)).value();
    ++in_flight;
    relay.value()->submit_async(event, [event, &in_flight](const OkResult& ok) {
      if (ok.accepted && ok.message.empty()) {
        std::string line = std::to_string(event->kind()) + " ";
        line.append(event->id_hex());
        line.push_back('\n');
        // One write(2) per line: whole lines reach the pipe before any kill.
        ssize_t n = ::write(STDOUT_FILENO, line.data(), line.size());
        (void)n;
      }
      --in_flight;
    });
  }
}
