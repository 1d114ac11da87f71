#include "websocket/message_pool.hpp"

#include <algorithm>
#include <system_error>

#include "util/thread_name.hpp"

namespace relaycore::websocket::detail {

MessagePool::MessagePool(std::size_t core, std::size_t max) : max_(std::max<std::size_t>(max, 1)) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < std::max<std::size_t>(core, 1); ++i) spawn_locked(true);
}

MessagePool::~MessagePool() { join(); }

void MessagePool::spawn_locked(bool core) {
  // Reap retired threads first, so churn does not grow threads_. They have left work() and
  // released the lock, so joining them cannot wait on us.
  for (std::thread::id id : retired_) {
    auto it = std::find_if(threads_.begin(), threads_.end(),
                           [&](const std::thread& t) { return t.get_id() == id; });
    if (it != threads_.end()) {
      it->join();
      threads_.erase(it);
    }
  }
  retired_.clear();
  try {
    threads_.emplace_back([this, core] { work(core); });
    ++live_;
  } catch (const std::system_error&) {
    // Out of threads: the queued task waits for a busy one to come free.
  }
}

void MessagePool::post(std::function<void()> task) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  tasks_.push_back(std::move(task));
  if (tasks_.size() > idle_ && live_ < max_) spawn_locked(false);
  cv_.notify_one();
}

void MessagePool::work(bool core) {
  name_this_thread("rc-ws-message");
  std::unique_lock lock(mu_);
  for (;;) {
    if (tasks_.empty()) {
      if (stopping_) break;
      ++idle_;
      bool timed_out = false;
      if (core) {
        cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      } else {
        timed_out = !cv_.wait_for(lock, kRetireAfter, [&] { return stopping_ || !tasks_.empty(); });
      }
      --idle_;
      if (timed_out) {
        retired_.push_back(std::this_thread::get_id());
        break;
      }
      continue;
    }
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // release captures (sessions, connections) outside the lock
    lock.lock();
  }
  --live_;
}

void MessagePool::join() {
  std::vector<std::thread> threads;
  {
    // Once stopping_ is set nothing spawns, so the threads taken here are all there are.
    std::lock_guard lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
    retired_.clear();
    cv_.notify_all();
  }
  for (std::thread& t : threads) {
    if (t.joinable()) t.join();
  }
}

}  // namespace relaycore::websocket::detail
