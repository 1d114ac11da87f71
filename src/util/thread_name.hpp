// Thread names: every thread relaycore starts names itself, so that `top -H`, perf and /proc
// show which part of the relay it belongs to.
#pragma once

#if defined(__linux__)
#include <pthread.h>
#endif

namespace relaycore {

// Names the calling thread (at most 15 characters).
inline void name_this_thread(const char* name) noexcept {
#if defined(__linux__)
  (void)pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

}  // namespace relaycore
