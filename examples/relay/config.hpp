// relaycore-relay's settings: one table of them, read from a TOML file (--config) and from the
// command line, where flags override the file. Each flag is a key of the same name without the
// dashes, in the file's section for its group ([limits], [rate-limits], ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "relaycore/options.hpp"

namespace relaycore::relay_example {

// Everything the relay is started with: the library's Options and what the example itself
// opens (the listener, the audit file, the adapters).
struct Config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7777;
  std::string audit;
  std::size_t threads = 2;
  std::size_t max_frame_bytes = 0;  // the transport's default, set by load_config
  bool permessage_deflate = true;   // agree to WebSocket compression when a client offers it
  std::string forwarded_header;     // the transport's default, set by load_config
  std::string postgres;
  std::string redis;
  bool limit_loopback = false;
  Options options;

  // What set each setting, by its name: the values as written, the file's first, then the
  // flags'. A reload compares these to tell what changed.
  std::map<std::string, std::vector<std::string>> given;
  // Where each setting was last set ("relay.toml:12" or "--threads"), for error messages.
  std::map<std::string, std::string> where;
};

// How a value is written, in the file (TOML types) and on the command line.
enum class ValueKind : std::uint8_t {
  kText,    // a string
  kNumber,  // a whole number
  kRate,    // "20/s", "off", or a number per second
  kBool,    // a flag without a value; true or false in the file
  kList,    // a repeatable flag; an array of strings in the file
};

// One setting: its section in the file ("" for the top level), its name, and whether a
// SIGHUP applies a change of it (otherwise the change waits for a restart).
struct SettingInfo {
  std::string section;
  std::string name;
  ValueKind kind = ValueKind::kText;
  bool flag = false;
  bool live = false;
};

// Every setting, in the order they are applied.
std::vector<SettingInfo> setting_infos();

// Sections the file may hold besides the top level, including the reserved ones whose keys do
// not exist yet.
const std::vector<std::string>& config_sections();

// Reads the settings: defaults, then the file at `config_path` (when not empty), then the flags
// in `args` (argv without argv[0]; --config and its value are skipped). Fills `errors` with one
// line per problem, each naming the key and the line or flag; the Config is usable only when
// `errors` is empty. `help` is set by --help.
Config load_config(const std::string& config_path, const std::vector<std::string>& args,
                   std::vector<std::string>& errors, bool& help);

// The path given with --config in `args`, or "" (with an error when it has no value).
std::string config_path_of(const std::vector<std::string>& args, std::vector<std::string>& errors);

}  // namespace relaycore::relay_example
