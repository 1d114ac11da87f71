// The public Logger helpers (level names, the stderr and null loggers) and relaycore's internal
// Log with its per-call-site throttle.
#include "util/log.hpp"

#include <fmt/chrono.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace relaycore {
namespace {

class StderrLogger final : public Logger {
 public:
  explicit StderrLogger(LogLevel min_level) : min_level_(min_level) {}

  void log(LogLevel level, std::string_view message) override {
    if (level < min_level_) return;
    const auto now = std::chrono::system_clock::now();
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    const std::string line = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z {:<5} {}\n",
                                         fmt::gmtime(std::chrono::system_clock::to_time_t(now)),
                                         millis, log_level_name(level), message);
    // One write per line; the mutex keeps lines whole even past PIPE_BUF.
    std::lock_guard lock(mu_);
    std::string_view rest = line;
    while (!rest.empty()) {
      const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // stderr is gone: nowhere left to say so
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }

 private:
  const LogLevel min_level_;
  std::mutex mu_;
};

class NullLogger final : public Logger {
 public:
  void log(LogLevel /*level*/, std::string_view /*message*/) override {}
};

class LeveledLogger final : public Logger {
 public:
  LeveledLogger(std::shared_ptr<Logger> target, LogLevel min_level)
      : target_(std::move(target)), min_level_(min_level) {}

  void log(LogLevel level, std::string_view message) override {
    if (level >= min_level_) target_->log(level, message);
  }

 private:
  const std::shared_ptr<Logger> target_;
  const LogLevel min_level_;
};

}  // namespace

std::string_view log_level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

Result<LogLevel> parse_log_level(std::string_view name) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (name == log_level_name(level)) return level;
  }
  return Status::invalid(
      fmt::format("unknown log level \"{}\" (debug, info, warn or error)", name));
}

std::shared_ptr<Logger> new_stderr_logger(LogLevel min_level) {
  return std::make_shared<StderrLogger>(min_level);
}

std::shared_ptr<Logger> new_null_logger() { return std::make_shared<NullLogger>(); }

// What each call site of Log::failure() has written and held back. Call sites are few and
// fixed (one per failure path in the code), so the map stays small.
class Log::Throttle {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Throttle(std::chrono::milliseconds interval) : interval_(interval) {}

  // The line to write now for a failure at `site`, or nothing when it is held back.
  std::optional<std::string> admit(const std::source_location& site, LogLevel level,
                                   std::string_view what, std::string_view detail) {
    const Clock::time_point now = Clock::now();
    std::lock_guard lock(mu_);
    auto [it, first] = sites_.try_emplace(key(site));
    Site& s = it->second;
    if (!first && now - s.last_written < interval_) {
      ++s.held;
      s.level = level;
      s.what.assign(what);
      s.detail.assign(detail);
      return std::nullopt;
    }
    const std::uint64_t held = s.held;
    s.held = 0;
    s.last_written = now;
    return line(what, detail, held);
  }

  // Takes every held-back count, as a line with the latest failure of its site.
  std::vector<std::pair<LogLevel, std::string>> drain() {
    std::vector<std::pair<LogLevel, std::string>> lines;
    std::lock_guard lock(mu_);
    for (auto& entry : sites_) {
      Site& s = entry.second;
      if (s.held == 0) continue;
      lines.emplace_back(s.level, fmt::format("{}: {} (the last of {} similar lines suppressed)",
                                              s.what, s.detail, s.held));
      s.held = 0;
    }
    return lines;
  }

 private:
  using Key = std::tuple<std::string_view, std::uint_least32_t, std::uint_least32_t>;

  struct Site {
    Clock::time_point last_written;
    std::uint64_t held = 0;  // lines held back since last_written
    // The latest held-back failure.
    LogLevel level = LogLevel::kError;
    std::string what;
    std::string detail;
  };

  static Key key(const std::source_location& site) noexcept {
    return {site.file_name(), site.line(), site.column()};
  }

  static std::string line(std::string_view what, std::string_view detail, std::uint64_t held) {
    if (held == 0) return fmt::format("{}: {}", what, detail);
    return fmt::format("{}: {} ({} similar lines suppressed before this one)", what, detail, held);
  }

  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::map<Key, Site> sites_;
};

Log::Log(std::shared_ptr<Logger> logger, LogLevel min_level,
         std::chrono::milliseconds repeat_interval)
    : logger_(logger ? std::move(logger) : new_stderr_logger(min_level)),
      min_level_(min_level),
      throttle_(std::make_shared<Throttle>(repeat_interval)) {}

void Log::failure(LogLevel level, std::string_view what, std::string_view detail,
                  std::source_location site) const noexcept {
  if (!enabled(level)) return;
  try {
    if (std::optional<std::string> line = throttle_->admit(site, level, what, detail)) {
      emit(level, *line);
    }
  } catch (...) {
    // Out of memory: the line is lost, the caller carries on.
  }
}

void Log::report_suppressed() const noexcept {
  if (!throttle_) return;
  try {
    // Written after the throttle's lock is released: the logger is host code.
    for (const auto& [level, line] : throttle_->drain()) emit(level, line);
  } catch (...) {
  }
}

void Log::emit(LogLevel level, std::string_view line) const noexcept {
  try {
    logger_->log(level, line);
  } catch (...) {
    // [Errors] in logger.hpp: what a logger throws is dropped.
  }
}

std::shared_ptr<Logger> leveled_logger(std::shared_ptr<Logger> target, LogLevel min_level) {
  if (!target) return new_stderr_logger(min_level);
  return std::make_shared<LeveledLogger>(std::move(target), min_level);
}

}  // namespace relaycore
