// Log: how relaycore's own code writes to the host's Logger. A cheap copyable handle, passed
// explicitly to what needs it (the pipeline's Core, each session's Outbox), so that nothing
// reaches for a global and two relays in one process log to their own loggers.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <source_location>
#include <string_view>
#include <utility>

#include "relaycore/logger.hpp"

namespace relaycore {

class Log {
 public:
  // A failure that repeats is written at most this often per call site.
  static constexpr std::chrono::milliseconds kRepeatInterval{1000};

  // Logs nothing.
  Log() = default;
  // `logger` null means new_stderr_logger(min_level).
  Log(std::shared_ptr<Logger> logger, LogLevel min_level,
      std::chrono::milliseconds repeat_interval = kRepeatInterval);

  bool enabled(LogLevel level) const noexcept { return logger_ && level >= min_level_; }

  // Formats and writes one line when `level` is enabled; nothing is formatted otherwise.
  template <typename... Args>
  void write(LogLevel level, fmt::format_string<Args...> format, Args&&... args) const noexcept {
    if (!enabled(level)) return;
    try {
      emit(level, fmt::format(format, std::forward<Args>(args)...));
    } catch (...) {
      // Out of memory while formatting: the line is lost, the caller carries on.
    }
  }

  // A failure at one place in the code, written as "<what>: <detail>" (the detail is usually a
  // Status message). A failure that repeats on every event would flood the log, so each call
  // site writes at most one line per repeat interval; its next line ends "(N similar lines
  // suppressed before this one)", and report_suppressed() writes what is still held back.
  void failure(LogLevel level, std::string_view what, std::string_view detail,
               std::source_location site = std::source_location::current()) const noexcept;

  // Writes, for each call site that has held lines back since its last line, its latest
  // failure and "(the last of N similar lines suppressed)". Relay::shutdown() calls it last.
  void report_suppressed() const noexcept;

 private:
  class Throttle;

  // Passes one line to the logger behind a catch-all (the Logger contract forbids throwing).
  void emit(LogLevel level, std::string_view line) const noexcept;

  std::shared_ptr<Logger> logger_;
  LogLevel min_level_ = LogLevel::kInfo;
  std::shared_ptr<Throttle> throttle_;
};

// `target` (stderr when null) behind a filter that passes lines at `min_level` and above: the
// relay's logger at the relay's level, for a storage the relay opens itself.
std::shared_ptr<Logger> leveled_logger(std::shared_ptr<Logger> target, LogLevel min_level);

}  // namespace relaycore
