// Logger: where relaycore reports what it cannot tell a client. A storage write that fails is
// answered "error: could not store the event"; the operator needs the reason, and it goes here.
// Hosts plug in their own (syslog, journald, their application's logger) or take the stderr one.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "relaycore/export.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

enum class LogLevel : std::uint8_t {
  kDebug = 0,  // what the relay is doing: its configuration at open, the shutdown drain
  kInfo = 1,   // lifecycle an operator wants by default; relaycore itself is quiet here
  kWarn = 2,   // a failure relaycore worked around (a duplicate lookup, a PubSub publish)
  kError = 3,  // a failure a client or the operator lost something to (a write, an audit record)
};

// "debug", "info", "warn", "error".
RELAYCORE_API std::string_view log_level_name(LogLevel level) noexcept;

// The level named by "debug", "info", "warn" or "error"; "invalid: ..." for anything else.
RELAYCORE_API Result<LogLevel> parse_log_level(std::string_view name);

// [Threading] log() is called from any relaycore thread (verify, write, dispatch and query
//   threads, and host threads inside Session and Relay calls), concurrently with itself.
// [Blocking] log() must not block for long: it runs on pipeline threads, and a slow logger slows
//   ingest and delivery. A logger whose destination can stall should queue the lines. relaycore
//   writes at most about one line per second for a failure that repeats.
// [Ownership] `message` is valid only during the call; copy it to keep it. relaycore shares the
//   logger with the host and holds it while the relay or any of its sessions lives.
// [Errors] log() must not throw; relaycore catches and drops anything thrown.
class RELAYCORE_API Logger {
 public:
  virtual ~Logger() = default;

  // One line, without a trailing newline. Messages of failures end with the Status message
  // ("write: storing 12 events failed: error: storage: write failed (disk I/O error)").
  virtual void log(LogLevel level, std::string_view message) = 0;
};

// Writes "<UTC time> <level> <message>" lines to stderr, each with one write(2) so that lines
// from several threads never interleave, and drops lines below `min_level`.
RELAYCORE_API std::shared_ptr<Logger> new_stderr_logger(LogLevel min_level);

// Drops everything: for hosts that want relaycore silent.
RELAYCORE_API std::shared_ptr<Logger> new_null_logger();

}  // namespace relaycore
