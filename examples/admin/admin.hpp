// relaycore-admin's commands. Each takes the parsed command line and returns the exit code:
// 0 done, 1 failed (said on stderr), 2 usage error.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace relaycore::admin {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct Args {
  std::string db = "./relaycore.db";
  std::string command;
  // Options with values (--filter, --out, --to, --audit), and flags (--dry-run) as "".
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;

  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::string get(const std::string& name) const {
    auto it = options.find(name);
    return it == options.end() ? std::string() : it->second;
  }
};

// Prints "relaycore-admin: <message>" on stderr and returns kExitFailed.
int fail(const std::string& message);

// Reading and writing events through relaycore (events_commands.cpp).
int export_events(const Args& args);
int import_events(const Args& args);
int delete_events(const Args& args);

// The database file itself, through SQLite (database_commands.cpp).
int compact(const Args& args);
int backup(const Args& args);
int verify(const Args& args);
int stats(const Args& args);

}  // namespace relaycore::admin
