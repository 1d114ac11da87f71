// relaycore-sync: syncs a relaycore SQLite database, or a relay, with a remote relay over
// WebSocket, with NIP-77 negentropy when the remote lists it and paged REQ otherwise.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "sync.hpp"

namespace relaycore::sync {
namespace {

constexpr const char* kUsage =
    "usage: relaycore-sync down|up|both LOCAL REMOTE [options]\n"
    "\n"
    "Syncs LOCAL, a relaycore SQLite database or a ws:// relay URL, with the relay at REMOTE\n"
    "(ws://HOST[:PORT][/PATH]):\n"
    "  down  fetch the events REMOTE has and LOCAL lacks, and store them in LOCAL\n"
    "  up    send the events LOCAL has and REMOTE lacks to REMOTE, and check each OK\n"
    "  both  both\n"
    "Every event received is verified (id and signature) before it is stored; a bad one is\n"
    "reported and never stored. A database is written through an embedded relay, so its\n"
    "rules apply, and it is refused while relaycore-relay runs on it.\n"
    "When REMOTE lists NIP-77 in its NIP-11 document the difference comes from one\n"
    "negentropy reconciliation; otherwise both sides are read in time windows with REQ.\n"
    "\n"
    "options:\n"
    "  --filter JSON     sync only the events this NIP-01 filter matches (no limit, no\n"
    "                    search), e.g. '{\"kinds\":[1],\"since\":1700000000}'\n"
    "  --state PATH      the paged REQ checkpoint, kept while a sync is unfinished so a rerun\n"
    "                    resumes (default: LOCAL.sync-state for a database; none for a URL)\n"
    "  --page N          events per REQ time window (default 500, at most the relay's\n"
    "                    max_limit)\n"
    "  --batch N         ids per REQ when fetching by id, and EVENTs awaiting their OK\n"
    "                    (default 250)\n"
    "  --no-negentropy   use paged REQ even when REMOTE lists NIP-77\n"
    "  --verbose         a line on stderr for every batch or window\n"
    "  --help            show this help\n"
    "\n"
    "Exit status: 0 done, 1 failed or incomplete (bad, rejected or unpageable events), 2 usage\n"
    "error, 130 interrupted (SIGINT or SIGTERM; what was stored stays, a rerun resumes).\n";

struct Args {
  Directions directions;
  std::string local;
  std::string remote;
  Filter filter;
  std::string state;
  std::uint32_t page = 500;
  std::size_t batch = 250;
  bool negentropy = true;
};

int usage(const std::string& message) {
  std::fprintf(stderr, "relaycore-sync: %s\n%s", message.c_str(), kUsage);
  return kExitUsage;
}

bool is_url(const std::string& s) { return s.rfind("ws://", 0) == 0 || s.rfind("wss://", 0) == 0; }

// A positive count no larger than `max`, or nothing.
std::optional<std::uint64_t> count_of(const std::string& s, std::uint64_t max) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || s[0] == '-' || n == 0 || n > max) return std::nullopt;
  return n;
}

// Parses the command line into `args`; returns -1 to go on, or the exit code.
int parse_args(int argc, char** argv, Args& args) {
  std::vector<std::string> positional;
  std::string filter_json;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    } else if (a == "--no-negentropy") {
      args.negentropy = false;
    } else if (a == "--verbose") {
      set_verbose(true);
    } else if (a == "--filter" || a == "--state" || a == "--page" || a == "--batch") {
      if (!value(v)) return usage(a + " needs a value");
      if (a == "--filter") filter_json = v;
      if (a == "--state") args.state = v;
      if (a == "--page" || a == "--batch") {
        std::optional<std::uint64_t> n = count_of(v, 100000);
        if (!n) return usage(a + ": not a count from 1 to 100000: " + v);
        if (a == "--page") args.page = static_cast<std::uint32_t>(*n);
        if (a == "--batch") args.batch = *n;
      }
    } else if (a.rfind("--", 0) == 0) {
      return usage("unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 3) return usage("expected a command, LOCAL and REMOTE");
  const std::string& command = positional[0];
  if (command != "down" && command != "up" && command != "both") {
    return usage("unknown command " + command);
  }
  args.directions.down = command != "up";
  args.directions.up = command != "down";
  args.local = positional[1];
  args.remote = positional[2];
  if (!is_url(args.remote)) return usage("REMOTE must be a ws:// URL: " + args.remote);
  for (const std::string& side : {args.local, args.remote}) {
    if (side.rfind("wss://", 0) == 0) {
      return usage("wss:// needs TLS, which relaycore's WebSocket client does not have: " + side);
    }
  }
  if (!filter_json.empty()) {
    Limits limits;
    limits.max_filter_values = 1u << 24;
    limits.max_filter_tags = 64;
    Result<Filter> f = parse_filter(filter_json, limits);
    if (!f) return usage("--filter: " + f.error().message());
    if (f->limit) return usage("--filter: limit is not supported; bound the sync with since/until");
    if (f->search) return usage("--filter: search is not supported: ranked results are no set");
    args.filter = std::move(f).value();
  }
  if (args.state.empty() && !is_url(args.local)) args.state = args.local + ".sync-state";
  return -1;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "relaycore-sync: %s\n", message.c_str());
  return kExitFailed;
}

// A failure's message without its "error: " prefix; other prefixes stay, they say more.
int fail(const Status& status) {
  return fail(status.code() == StatusCode::kError ? std::string(status.detail())
                                                  : status.message());
}

void on_signal(int) {
  // A second signal does not wait for the clean stop.
  if (stop_requested()) ::_exit(kExitInterrupted);
  request_stop();
}

void print_tally(const char* what, const Tally& t) {
  std::printf(
      "%s: %llu missing, %llu received, %llu stored, %llu duplicates, %llu rejected, "
      "%llu bad\n",
      what, static_cast<unsigned long long>(t.wanted), static_cast<unsigned long long>(t.received),
      static_cast<unsigned long long>(t.stored), static_cast<unsigned long long>(t.duplicates),
      static_cast<unsigned long long>(t.rejected), static_cast<unsigned long long>(t.bad));
  for (const auto& [reason, n] : t.reasons) {
    std::printf("  %s rejected: %llu  %s\n", what, static_cast<unsigned long long>(n),
                reason.c_str());
  }
}

Result<std::unique_ptr<Peer>> open_local(const Args& args) {
  if (is_url(args.local)) {
    Result<std::unique_ptr<RelayPeer>> relay = RelayPeer::open(args.local, args.batch);
    if (!relay) return relay.error();
    return std::unique_ptr<Peer>(std::move(relay).value());
  }
  if (!args.directions.down && !std::filesystem::exists(args.local)) {
    return Status::error("no database at " + args.local);
  }
  return open_db_peer(args.local);
}

int run(int argc, char** argv) {
  Args args;
  if (int code = parse_args(argc, argv, args); code >= 0) return code;

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Result<std::unique_ptr<RelayPeer>> remote = RelayPeer::open(args.remote, args.batch);
  if (!remote) return fail(remote.error());
  Result<std::unique_ptr<Peer>> local = open_local(args);
  if (!local) return fail(local.error());

  Report report;
  Status s;
  bool paged = true;
  if (!args.negentropy) {
    std::printf("paged REQ (--no-negentropy)\n");
  } else if (!(*remote)->supports_negentropy()) {
    std::printf("%s does not list NIP-77: paged REQ\n", args.remote.c_str());
  } else {
    std::printf("%s lists NIP-77: negentropy\n", args.remote.c_str());
    std::fflush(stdout);
    s = negentropy_sync(**local, **remote, args.filter, args.directions, args.batch, report);
    paged = s.code() == StatusCode::kBlocked;
    if (paged) {
      std::printf("negentropy refused (%s): paged REQ\n", s.message().c_str());
      s = Status::ok();
    }
  }
  std::fflush(stdout);
  if (paged) {
    s = windowed_sync(**local, **remote, args.filter, args.directions, args.page, args.state,
                      report);
  }
  // The embedded relay drains: everything handed to it is stored before the summary.
  Status closed = (*local)->close();
  static_cast<void>((*remote)->close());

  if (args.directions.down) print_tally("down", report.down);
  if (args.directions.up) print_tally("up", report.up);
  std::fflush(stdout);
  if (stop_requested()) {
    std::fprintf(stderr,
                 "relaycore-sync: interrupted; what was stored stays, run again to "
                 "finish\n");
    return kExitInterrupted;
  }
  if (!s) return fail(s);
  if (!closed) return fail(closed);
  const std::uint64_t bad = report.down.bad + report.up.bad;
  const std::uint64_t rejected = report.down.rejected + report.up.rejected;
  if (bad > 0) return fail(std::to_string(bad) + " events failed verification, none stored");
  if (rejected > 0) return fail(std::to_string(rejected) + " events were rejected");
  if (report.overflows > 0) {
    return fail(std::to_string(report.overflows) +
                " seconds held more events than a query returns; they may be incomplete");
  }
  return kExitOk;
}

}  // namespace
}  // namespace relaycore::sync

int main(int argc, char** argv) { return relaycore::sync::run(argc, argv); }
