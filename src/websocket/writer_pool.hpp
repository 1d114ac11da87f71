// The threads that write connections' queued fan-out. A dispatch batch marks hundreds of
// connections ready at once; each mark is one slot in a vector that keeps its capacity (no
// allocation), and only a mark on an empty list wakes a thread (one wake-up per burst, not one
// per connection). A connection is on the list at most once at a time: its own flag sees to it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace relaycore::websocket::detail {

class WsConnection;

class WriterPool {
 public:
  explicit WriterPool(std::size_t threads);
  ~WriterPool();
  WriterPool(const WriterPool&) = delete;
  WriterPool& operator=(const WriterPool&) = delete;

  // Has a writer thread call `connection`'s flush_queued(). Ignored after join().
  void push(std::weak_ptr<WsConnection> connection);

  // Stops the threads (connections still listed are not flushed) and joins them. Idempotent.
  void join();

 private:
  // The most connections one thread takes at a time while others could help.
  static constexpr std::size_t kShare = 64;

  void work();

  const std::size_t count_;  // threads started
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::weak_ptr<WsConnection>> ready_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace relaycore::websocket::detail
