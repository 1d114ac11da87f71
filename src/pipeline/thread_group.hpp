// ThreadGroup: the threads of one pool stage, started together and joined together.
#pragma once

#if defined(__linux__)
#include <pthread.h>
#endif

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

namespace relaycore::pipeline {

// Names the calling thread (at most 15 characters), so `top -H`, perf and /proc show which
// stage a thread belongs to.
inline void name_this_thread(const char* name) noexcept {
#if defined(__linux__)
  (void)pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

class ThreadGroup {
 public:
  // Starts max(1, n) threads running `body`.
  void start(std::size_t n, const std::function<void()>& body) {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, n); ++i) threads_.emplace_back(body);
  }
  void join() {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
};

}  // namespace relaycore::pipeline
