// The Logger helpers and relaycore's internal Log: level names, the level filter, the
// per-call-site throttle that keeps a failure repeating on every event from flooding the log,
// and a logger that throws.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "relay_test_util.hpp"
#include "relaycore/logger.hpp"
#include "util/log.hpp"

using namespace relaycore;
using namespace std::chrono_literals;

namespace {

constexpr std::chrono::milliseconds kForever = std::chrono::hours(1);

// Fails at one call site, n times.
void fail_here(const Log& log, int n, const std::string& detail) {
  for (int i = 0; i < n; ++i) log.failure(LogLevel::kError, "here", detail);
}

std::vector<std::string> texts(const test::CapturingLogger& logger) {
  std::vector<std::string> out;
  for (const auto& line : logger.lines()) out.push_back(line.text);
  return out;
}

}  // namespace

TEST_CASE("log levels have names and parse back from them", "[log]") {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    Result<LogLevel> parsed = parse_log_level(log_level_name(level));
    REQUIRE(parsed);
    CHECK(*parsed == level);
  }
  CHECK(log_level_name(LogLevel::kWarn) == "warn");
  Result<LogLevel> bad = parse_log_level("verbose");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message() ==
        "invalid: unknown log level \"verbose\" (debug, info, warn or error)");
}

TEST_CASE("log drops lines below its level without passing them on", "[log]") {
  auto logger = std::make_shared<test::CapturingLogger>();
  Log log(logger, LogLevel::kWarn);
  CHECK_FALSE(log.enabled(LogLevel::kInfo));
  log.write(LogLevel::kInfo, "info {}", 1);
  log.failure(LogLevel::kDebug, "debug", "detail");
  log.write(LogLevel::kWarn, "warn {} of {}", 1, 2);
  log.write(LogLevel::kError, "error");
  CHECK(texts(*logger) == std::vector<std::string>{"warn 1 of 2", "error"});
  CHECK(logger->lines()[0].level == LogLevel::kWarn);
}

TEST_CASE("log writes a repeating failure once per call site and counts the rest", "[log]") {
  auto logger = std::make_shared<test::CapturingLogger>();
  Log log(logger, LogLevel::kDebug, kForever);
  fail_here(log, 50, "error: disk full");
  // Another call site is throttled on its own.
  auto fail_there = [&](std::string_view detail) { log.failure(LogLevel::kWarn, "there", detail); };
  fail_there("error: lookup failed");
  fail_there("error: lookup failed again");
  CHECK(texts(*logger) ==
        std::vector<std::string>{"here: error: disk full", "there: error: lookup failed"});

  log.report_suppressed();
  const std::vector<test::CapturingLogger::Line> lines = logger->lines();
  REQUIRE(lines.size() == 4);
  // Sites are reported in no particular order; each with its latest failure and its count.
  std::vector<std::string> reported = {lines[2].text, lines[3].text};
  std::sort(reported.begin(), reported.end());
  CHECK(reported ==
        std::vector<std::string>{"here: error: disk full (the last of 49 similar lines suppressed)",
                                 "there: error: lookup failed again (the last of 1 similar lines "
                                 "suppressed)"});
  // Nothing is held back any more.
  log.report_suppressed();
  CHECK(logger->lines().size() == 4);
}

TEST_CASE("log writes a failure again once the repeat interval has passed", "[log]") {
  auto logger = std::make_shared<test::CapturingLogger>();
  Log log(logger, LogLevel::kDebug, 0ms);
  fail_here(log, 3, "error: disk full");
  CHECK(texts(*logger) == std::vector<std::string>(3, "here: error: disk full"));
}

TEST_CASE("log counts the failures it held back in the site's next line", "[log]") {
  auto logger = std::make_shared<test::CapturingLogger>();
  constexpr auto kInterval = 1000ms;
  Log log(logger, LogLevel::kDebug, kInterval);
  const auto start = std::chrono::steady_clock::now();
  fail_here(log, 5, "error: disk full");
  REQUIRE(std::chrono::steady_clock::now() - start < kInterval);  // four were held back
  // What is under test is the passing of the interval itself: nothing else to wait for.
  std::this_thread::sleep_until(start + kInterval);
  fail_here(log, 1, "error: disk still full");
  CHECK(texts(*logger) ==
        std::vector<std::string>{"here: error: disk full",
                                 "here: error: disk still full (4 similar lines suppressed before "
                                 "this one)"});
}

TEST_CASE("log swallows what a logger throws", "[log]") {
  struct ThrowingLogger : Logger {
    void log(LogLevel, std::string_view) override { throw std::runtime_error("no space"); }
  };
  Log log(std::make_shared<ThrowingLogger>(), LogLevel::kDebug, 0ms);
  CHECK_NOTHROW(log.write(LogLevel::kError, "x"));
  CHECK_NOTHROW(log.failure(LogLevel::kError, "x", "y"));
}

TEST_CASE("the null logger and a null Options logger are usable", "[log]") {
  CHECK_NOTHROW(new_null_logger()->log(LogLevel::kError, "dropped"));
  // Null stands for the stderr logger; below its level nothing is written.
  Log log(nullptr, LogLevel::kError);
  CHECK(log.enabled(LogLevel::kError));
  CHECK_NOTHROW(log.write(LogLevel::kInfo, "not written"));
}
