// call_host: the one way relaycore threads run host code.
#pragma once

namespace relaycore::pipeline {

// Runs host code (policies, ack callbacks) behind a catch-all, so no exception crosses into
// relaycore's threads. Returns false if it threw.
template <typename F>
bool call_host(F&& f) noexcept {
  try {
    f();
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace relaycore::pipeline
