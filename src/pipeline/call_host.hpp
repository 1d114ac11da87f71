// call_host: the one way relaycore threads run host code.
#pragma once

#include <exception>
#include <source_location>
#include <string_view>

#include "util/log.hpp"

namespace relaycore::pipeline {

// Runs host code (policies, ack callbacks, Connection::close, in-process callbacks) behind a
// catch-all, so no exception crosses into relaycore's threads. Returns false if it threw, after
// logging `what` with the exception's text.
template <typename F>
bool call_host(const Log& log, std::string_view what, F&& f,
               std::source_location site = std::source_location::current()) noexcept {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    log.failure(LogLevel::kError, what, e.what(), site);
  } catch (...) {
    log.failure(LogLevel::kError, what, "an exception that is not a std::exception", site);
  }
  return false;
}

}  // namespace relaycore::pipeline
