// Thread priority: a thread whose work no client waits for runs below the threads that answer
// clients, so that on a busy machine it takes the cores they leave idle rather than delaying
// them.
#pragma once

#if defined(__linux__)
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

}  // namespace relaycore
