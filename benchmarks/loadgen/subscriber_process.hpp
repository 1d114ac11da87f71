// The subscribers of a loadgen run live in a process of their own (the loadgen re-executed with
// --role subscribers), so that reading thousands of deliveries never delays the publishers'
// sends or the timing of their OKs. Both processes time with CLOCK_MONOTONIC, which is the same
// clock machine-wide, so arrival times compare directly with send times.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "loadgen.hpp"

namespace relaycore::loadgen {

// When the subscribers got one event: the first and the last delivery, and how many there were.
struct Arrival {
  std::uint64_t id_prefix = 0;  // the first 16 hex digits of the event id
  std::int64_t first_ns = 0, last_ns = 0;
  std::size_t count = 0;
};

// The parent's handle on the subscriber process.
class SubscriberProcess {
 public:
  // Starts `argv0 --role subscribers ...` for `config`'s subscribers on tag `tag`, and waits
  // until every REQ has its EOSE. False (with a message on stderr) when that fails.
  bool start(const char* argv0, const Config& config, const std::string& tag);
  // Tells the process how many deliveries to wait for (it gives up 2 s after the last one),
  // then collects what arrived. Also sets `deliveries` and `last_ns`.
  std::vector<Arrival> finish(std::size_t expected, std::size_t& deliveries, std::int64_t& last_ns);
  ~SubscriberProcess();

 private:
  pid_t pid_ = -1;
  std::FILE* to_ = nullptr;
  std::FILE* from_ = nullptr;
};

// The body of `--role subscribers`: connects, reports "ready", records arrivals until told the
// expected count on stdin, then writes them to stdout.
int run_subscriber_role(const Config& config);

}  // namespace relaycore::loadgen
