// CpuYield: lets a thread that works through a long burst offer its core to threads that are
// waiting for one, every so often.
//
// The kernel lets a running thread finish its time slice (milliseconds on a busy machine)
// before a thread it woke may run. A fan-out burst to a thousand connections would then hold
// back the threads that carry an OK or a query reply, and the client reading it, for the whole
// burst. A yield costs about a microsecond when nothing waits.
#pragma once

#include <chrono>
#include <thread>

namespace relaycore {

class CpuYield {
 public:
  explicit CpuYield(std::chrono::microseconds every)
      : every_(every), last_(std::chrono::steady_clock::now()) {}

  // Call between units of work: yields once `every` has passed since the last yield.
  void operator()() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < every_) return;
    std::this_thread::yield();
    last_ = std::chrono::steady_clock::now();
  }

 private:
  std::chrono::microseconds every_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace relaycore
