// The threads that write connections' queued fan-out. A dispatch batch marks hundreds of
// connections ready at once; each mark is one slot in a vector that keeps its capacity (no
// allocation), and only a mark on an empty list wakes a thread (one wake-up per burst, not one
// per connection). A connection is on the list at most once at a time: its own flag sees to it.
//
// The pool also paces whoever queues fan-out. Bytes queued on a connection whose socket has room
// are the relay's backlog, not the reader's: counting them against the reader's outbound cap
// would cut healthy readers whenever the writers fall behind a fast publisher. So the pool keeps
// that backlog under kMaxBacklog by holding the queueing thread (dispatch, a history reader)
// until the writers catch up; at saturation fan-out then paces ingest instead of cutting readers.
// Bytes queued while a socket is full are the reader's, and its cap applies to them.
#pragma once

#include <atomic>
#include <chrono>
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

  // Counts `bytes` queued on a connection whose socket has room into the backlog, and takes
  // them out again once they are written, dropped, or left waiting for a full socket.
  void add_backlog(std::size_t bytes) { backlog_.fetch_add(bytes, std::memory_order_seq_cst); }
  void release_backlog(std::size_t bytes);

  // Returns once the backlog is at most kMaxBacklog (at once when it is), or the pool stops.
  // A writer thread never waits here.
  void pace();

  // The threads waiting in pace(); for tests.
  int pacing_waiters() const { return pacing_waiters_.load(); }

  // The backlog the writers may have before queueing threads wait: a few dispatch batches of a
  // large fan-out, so the writers always have work while no reader's queue grows long.
  static constexpr std::size_t kMaxBacklog = 8u << 20;

  // Stops the threads (connections still listed are not flushed) and joins them. Idempotent.
  void join();

 private:
  // The most connections one thread takes at a time while others could help.
  static constexpr std::size_t kShare = 64;
  // How long a writer thread writes before it offers its core to waiting threads (CpuYield).
  static constexpr std::chrono::microseconds kYieldAfter{50};

  void work();

  const std::size_t count_;  // threads started
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::weak_ptr<WsConnection>> ready_;  // ready_[head_..] wait, oldest first
  std::size_t head_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> backlog_{0};
  std::atomic<int> pacing_waiters_{0};
  std::condition_variable paced_;  // waited on with mu_
};

}  // namespace relaycore::websocket::detail
