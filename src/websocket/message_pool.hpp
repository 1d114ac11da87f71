// The threads that run Session::on_message() and on_close(). They are kept apart from the I/O
// threads because on_message() may block on back-pressure: a blocked call must not stop the
// server from writing, pinging and accepting, or relaycore would see every peer as slow.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace relaycore::websocket::detail {

// A FIFO task pool with `core` threads that grows by one thread whenever a task arrives and
// every thread is busy, up to `max` in all. A blocked task therefore holds one thread without
// holding up other connections. Grown threads retire after a while without work.
class MessagePool {
 public:
  MessagePool(std::size_t core, std::size_t max);
  ~MessagePool();
  MessagePool(const MessagePool&) = delete;
  MessagePool& operator=(const MessagePool&) = delete;

  // Queues `task`. Tasks must not throw. Ignored after join().
  void post(std::function<void()> task);

  // Runs every queued task, then stops and joins the threads. Idempotent; not from a task.
  void join();

 private:
  // Grown threads leave after this long without a task.
  static constexpr std::chrono::seconds kRetireAfter{10};

  void spawn_locked(bool core);
  void work(bool core);

  const std::size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::size_t live_ = 0;
  std::size_t idle_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  // Threads that have retired and only wait to be joined.
  std::vector<std::thread::id> retired_;
};

}  // namespace relaycore::websocket::detail
