// relaycore-admin: an operator's tool for a relay's SQLite database: export and import JSONL,
// compact, back up, verify, delete and count. Commands that write refuse to run while a relay
// holds the database (relaycore-relay keeps a lock on it); the others are safe online.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../common/db_lock.hpp"
#include "admin.hpp"

using namespace relaycore::admin;

namespace {

constexpr const char* kUsage =
    "usage: relaycore-admin [--db PATH] COMMAND [options]\n"
    "\n"
    "  --db PATH                 the relay's SQLite database (default ./relaycore.db)\n"
    "\n"
    "commands safe while a relay runs on the database:\n"
    "  export [--filter JSON] [--out FILE]\n"
    "                            the stored events as JSONL (one event a line), newest first,\n"
    "                            to stdout or FILE; a NIP-01 filter picks which\n"
    "  backup --to PATH          a consistent copy of the database (SQLite's online backup)\n"
    "  verify [--audit PATH]     SQLite's integrity check, and the audit log's hash chain\n"
    "  stats                     events by kind, the oldest and newest, the size on disk and\n"
    "                            the events' JSON (what max-bytes limits)\n"
    "  delete --filter JSON --dry-run\n"
    "                            list the events a delete would remove, removing nothing\n"
    "\n"
    "commands that write, refused while a relay runs on the database:\n"
    "  import FILE|- [--audit PATH]\n"
    "                            store JSONL events with the relay's checks (id, signature,\n"
    "                            limits, replacement, NIP-09 deletions); reports what was\n"
    "                            stored, the duplicates, and each rejection with its reason\n"
    "  delete --filter JSON [--audit PATH]\n"
    "                            remove the matching events (an operator's delete), each\n"
    "                            with an audit record in the audit log\n"
    "  compact                   checkpoint the WAL and VACUUM; the size before and after\n"
    "\n"
    "Long commands show their progress on stderr. Exit status: 0 done, 1 failed (or events\n"
    "were rejected), 2 usage error.\n";

struct Command {
  std::string_view name;
  int (*run)(const Args&);
  // Options taking a value, and options that are flags.
  std::vector<std::string_view> values;
  std::vector<std::string_view> flags;
  std::size_t positional;
  // Whether it may create the database, and whether it writes to it.
  bool creates;
  bool (*writes)(const Args&);
};

bool always(const Args&) { return true; }
bool never(const Args&) { return false; }

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"export", export_events, {"--filter", "--out"}, {}, 0, false, never},
      {"import", import_events, {"--audit"}, {}, 1, true, always},
      {"compact", compact, {}, {}, 0, false, always},
      {"backup", backup, {"--to"}, {}, 0, false, never},
      {"verify", verify, {"--audit"}, {}, 0, false, never},
      {"delete",
       delete_events,
       {"--filter", "--audit"},
       {"--dry-run"},
       0,
       false,
       [](const Args& a) { return !a.has("--dry-run"); }},
      {"stats", stats, {}, {}, 0, false, never},
  };
  return table;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "relaycore-admin: %s\n\n%s", message.c_str(), kUsage);
  return kExitUsage;
}

bool contains(const std::vector<std::string_view>& list, std::string_view s) {
  for (std::string_view x : list) {
    if (x == s) return true;
  }
  return false;
}

}  // namespace

namespace relaycore::admin {
int fail(const std::string& message) {
  std::fprintf(stderr, "relaycore-admin: %s\n", message.c_str());
  return kExitFailed;
}
}  // namespace relaycore::admin

int main(int argc, char** argv) {
  Args args;
  const Command* command = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--db") {
      const char* v = value();
      if (!v) return usage_error("--db needs a value");
      args.db = v;
    } else if (!command && arg.rfind("--", 0) != 0) {
      for (const Command& c : commands()) {
        if (c.name == arg) command = &c;
      }
      if (!command) return usage_error("unknown command \"" + arg + "\"");
      args.command = arg;
    } else if (command && contains(command->values, arg)) {
      const char* v = value();
      if (!v) return usage_error(arg + " needs a value");
      args.options[arg] = v;
    } else if (command && contains(command->flags, arg)) {
      args.options[arg] = "";
    } else if (command && (arg.rfind("--", 0) != 0 || arg == "-")) {
      args.positional.push_back(arg);
    } else {
      return usage_error("unknown option \"" + arg + "\"" +
                         (command ? " for " + std::string(command->name) : std::string()));
    }
  }
  if (!command) return usage_error("missing command");
  if (args.positional.size() != command->positional) {
    return usage_error(std::string(command->name) + " takes " +
                       std::to_string(command->positional) + " argument(s)");
  }
  if (args.command == "backup" && !args.has("--to")) return usage_error("backup needs --to PATH");
  if (args.command == "delete" && !args.has("--filter")) {
    return usage_error("delete needs --filter JSON");
  }

  struct stat st {};
  if (!command->creates && ::stat(args.db.c_str(), &st) != 0) {
    return fail("no database at " + args.db);
  }
  // Held until the command returns, so that no relay starts on the database meanwhile.
  relaycore::examples::DbLock lock;
  if (command->writes(args)) {
    relaycore::Result<relaycore::examples::DbLock> held =
        relaycore::examples::DbLock::acquire(args.db);
    if (!held) {
      return fail(std::string(command->name) + " refused: " + std::string(held.error().detail()) +
                  "; stop it first (export, backup, verify, stats and delete --dry-run are safe "
                  "while it runs)");
    }
    lock = std::move(held).value();
  }
  return command->run(args);
}
