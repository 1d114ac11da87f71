// relaycore-bench-isolation's parts. One program with a subcommand per role, so that
// benchmarks/run_isolation.sh runs the store builder, each attacker and the healthy probes as
// separate processes against one relaycore-relay:
//   seed   builds the SQLite store before the relay starts
//   probe  healthy clients timing REQ->EOSE and EVENT->OK
//   slow   one connection that asks for a lot of history and stops reading its socket
//   flood  one connection that sends thousands of full-history REQs
//   heavy  clients running expensive queries (NIP-50 search, a 1,000-value #t) in a loop
//   readback  connections reading stored events back by id (benchmarks/run_readback.sh)
// Each prints one JSON line on stdout; attackers first print "attacking" once their load is on.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace relaycore::websocket {
class Client;
}

namespace relaycore::isolation {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Reads the flags after the subcommand: `handle(flag, value)` returns false for an unknown
// flag, which ends the program with `usage`.
class FlagReader {
 public:
  FlagReader(int argc, char** argv, const char* usage) : argc_(argc), argv_(argv), usage_(usage) {}
  template <typename Handle>
  void read(Handle handle) {
    for (int i = 2; i < argc_; ++i) {
      const std::string flag = argv_[i];
      if (flag == "--help" || flag == "-h") print_usage_and_exit(0);
      if (i + 1 >= argc_ || !handle(flag, std::string(argv_[i + 1]))) print_usage_and_exit(2);
      ++i;
    }
  }
  [[noreturn]] void print_usage_and_exit(int code) const;

 private:
  int argc_;
  char** argv_;
  const char* usage_;
};

// A whole number from a flag value; ends the program when it is not one.
std::size_t to_count(const std::string& flag, const std::string& value);

// p50, p99, p999 and max of latency samples in milliseconds, as a JSON object.
std::string latency_json(std::vector<double> samples_ms);

// `s` as a JSON string literal.
std::string json_string(std::string_view s);

// The 64-hex value after `key` (e.g. "\"id\":\"") in `json`, or "".
std::string_view hex_after(std::string_view json, std::string_view key);

// What came on a connection, by message type.
struct Received {
  std::size_t events = 0, eose = 0, closed_rate_limited = 0, closed_other = 0, notices = 0;
  std::size_t bytes = 0;
  std::string first_closed;  // the first CLOSED message, cut to 200 bytes

  void count(std::string_view text);
  void add(const Received& other);
  // The fields, without the braces.
  std::string json_fields() const;
};

// Connects and completes the handshake, or ends the program.
std::unique_ptr<websocket::Client> connect_or_die(const std::string& url);

// Tells the driver the load is on (a sentinel line it waits for).
void announce_attacking();

int run_seed(int argc, char** argv);
int run_probe(int argc, char** argv);
int run_slow(int argc, char** argv);
int run_flood(int argc, char** argv);
int run_heavy(int argc, char** argv);
int run_readback(int argc, char** argv);

}  // namespace relaycore::isolation
