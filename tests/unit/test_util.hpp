// Helpers shared by the unit tests: fixed keys, signed events, and a wall-clock poll.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/keys.hpp"

namespace relaycore::test {

inline const Keypair& alice() {
  static const Keypair k =
      Keypair::from_secret_hex("0000000000000000000000000000000000000000000000000000000000000003")
          .value();
  return k;
}

inline const Keypair& bob() {
  static const Keypair k =
      Keypair::from_secret_hex("b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfef")
          .value();
  return k;
}

// Unix seconds now: events in relay tests must be fresh (NIP-01 created_at windows, NIP-40).
inline std::int64_t now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// For a condition that follows the wall clock and so has no event to wait for (a NIP-40
// expiration, a sink's retry backoff): asks `done` again every few milliseconds until it holds
// or `timeout` has passed, and returns its last answer. Everything else waits for a sentinel.
inline bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

inline EventPtr signed_event(const Keypair& keys, std::uint16_t kind, std::int64_t created_at,
                             std::string content, std::vector<Tag> tags = {}) {
  EventDraft d;
  d.kind = kind;
  d.created_at = created_at;
  d.content = std::move(content);
  d.tags = std::move(tags);
  return sign_event(keys, std::move(d)).value();
}

inline std::string read_file(const std::string& path) {
  std::string out;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  return out;
}

}  // namespace relaycore::test
