// ThreadGroup: the threads of one pool stage, started together and joined together.
#pragma once

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

#include "util/thread_name.hpp"

namespace relaycore::pipeline {

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
