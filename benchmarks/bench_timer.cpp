// relaycore-bench-timer: what a timed sleep costs the sleeping thread, and how long it lasts,
// with Linux's default timer slack and with the writer's (tighten_this_thread_timer_slack).
// The writer sleeps through Options::commit_delay_micros this way. A machine figure: on a VM
// the timer's programming and its interrupt can cost more than the sleep's own bookkeeping.
//
//   relaycore-bench-timer [--waits N]     (default 5000 waits of each length)
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "util/thread_priority.hpp"

namespace {

double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

// N waits of `us` on a condition variable nobody notifies, as WriteStage::hold_open waits.
void time_waits(int n, int us, const char* slack) {
  std::mutex mu;
  std::condition_variable cv;
  const double cpu0 = thread_cpu_us();
  const auto wall0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::microseconds(us));
  }
  const double wall =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - wall0).count();
  std::printf("%s slack, %d us wait: %.1f us of thread CPU per wait, %.1f us long\n", slack, us,
              (thread_cpu_us() - cpu0) / n, wall / n);
}

}  // namespace

int main(int argc, char** argv) {
  int n = 5000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--waits") == 0 && i + 1 < argc) {
      n = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: relaycore-bench-timer [--waits N]\n");
      return 2;
    }
  }
  if (n <= 0) n = 1;
  for (int us : {50, 150, 300}) time_waits(n, us, "default");
  if (!relaycore::tighten_this_thread_timer_slack()) {
    std::fprintf(stderr, "cannot set the timer slack here\n");
    return 1;
  }
  for (int us : {50, 150, 300}) time_waits(n, us, "tight");
  return 0;
}
