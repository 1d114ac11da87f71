// Thread priority: a thread whose work no client waits for runs below the threads that answer
// clients, so that on a busy machine it takes the cores they leave idle rather than delaying
// them. And timer slack: a thread that sleeps for a set time on a client's behalf wakes when
// asked, not when the kernel finds it convenient.
#pragma once

#if defined(__linux__)
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace relaycore {

// The nice value of a background thread. Against a busy thread of normal priority it gets about a
// tenth of the core (CFS weights 110 and 1024), so it still keeps up on a saturated machine,
// while a thread that wakes for a client preempts it at once. At 19 or under SCHED_IDLE it
// would get next to nothing there.
inline constexpr int kBackgroundNice = 10;

// Lowers the calling thread (only it: Linux keeps a nice value per thread) to kBackgroundNice.
// Lowering one's own priority needs no privilege; false if the system refused anyway, or on
// systems without per-thread nice values.
inline bool lower_this_thread_priority() noexcept {
#if defined(__linux__)
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  return ::setpriority(PRIO_PROCESS, tid, kBackgroundNice) == 0;
#else
  return false;
#endif
}

// How late the kernel may wake a thread from a timed sleep so as to batch its wake-ups with
// others: Linux's default is 50 us, which a short sleep overshoots by on top of the wake-up
// itself (a 150 us wait took 220 us on a 2-core VM, 172 us with this slack, for the same CPU:
// relaycore-bench-timer).
inline constexpr unsigned long kTightTimerSlackNanos = 1000;

// Sets the calling thread's timer slack (per thread on Linux) to kTightTimerSlackNanos. false if
// the system refused, or on systems without it.
inline bool tighten_this_thread_timer_slack() noexcept {
#if defined(__linux__)
  return ::prctl(PR_SET_TIMERSLACK, kTightTimerSlackNanos, 0, 0, 0) == 0;
#else
  return false;
#endif
}

}  // namespace relaycore
