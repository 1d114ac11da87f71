#include "websocket/writer_pool.hpp"

#include <algorithm>

#include "util/cpu_yield.hpp"
#include "util/thread_name.hpp"
#include "websocket/connection.hpp"

namespace relaycore::websocket::detail {
namespace {

// Set on the pool's own threads, which must never wait for themselves.
thread_local bool t_writer = false;

}  // namespace

WriterPool::WriterPool(std::size_t threads) : count_(std::max<std::size_t>(threads, 1)) {
  for (std::size_t i = 0; i < count_; ++i) {
    threads_.emplace_back([this] { work(); });
  }
}

WriterPool::~WriterPool() { join(); }

void WriterPool::push(std::weak_ptr<WsConnection> connection) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    wake = head_ == ready_.size();
    ready_.push_back(std::move(connection));
  }
  if (wake) cv_.notify_one();
}

void WriterPool::release_backlog(std::size_t bytes) {
  if (bytes == 0) return;
  const std::size_t left = backlog_.fetch_sub(bytes, std::memory_order_seq_cst) - bytes;
  // A waiter counts itself before it reads the backlog, so either it sees this release or
  // this sees it.
  if (left <= kMaxBacklog && pacing_waiters_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard lock(mu_);
    paced_.notify_all();
  }
}

void WriterPool::pace() {
  if (t_writer || backlog_.load(std::memory_order_seq_cst) <= kMaxBacklog) return;
  pacing_waiters_.fetch_add(1, std::memory_order_seq_cst);
  {
    std::unique_lock lock(mu_);
    paced_.wait(
        lock, [&] { return stopping_ || backlog_.load(std::memory_order_seq_cst) <= kMaxBacklog; });
  }
  pacing_waiters_.fetch_sub(1, std::memory_order_seq_cst);
}

void WriterPool::join() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    ready_.clear();
    head_ = 0;
  }
  cv_.notify_all();
  paced_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WriterPool::work() {
  name_this_thread("rc-ws-fanout");
  t_writer = true;
  std::vector<std::weak_ptr<WsConnection>> mine;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || head_ < ready_.size(); });
    if (stopping_) return;
    // Take a share from the front, oldest first: a connection listed early must not wait
    // while connections flushed since are listed again and served before it. Wake another
    // thread for the rest.
    const std::size_t listed = ready_.size() - head_;
    const std::size_t take = std::min(listed, std::max(kShare, listed / count_));
    const auto first = ready_.begin() + static_cast<std::ptrdiff_t>(head_);
    mine.assign(std::make_move_iterator(first),
                std::make_move_iterator(first + static_cast<std::ptrdiff_t>(take)));
    head_ += take;
    if (head_ == ready_.size()) {
      ready_.clear();  // keeps the capacity
      head_ = 0;
    } else if (head_ * 2 > ready_.size()) {
      ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    const bool more = head_ < ready_.size();
    lock.unlock();
    if (more) cv_.notify_one();
    CpuYield yield(kYieldAfter);
    for (const std::weak_ptr<WsConnection>& weak : mine) {
      if (std::shared_ptr<WsConnection> connection = weak.lock()) connection->flush_queued();
      yield();
    }
    mine.clear();
    lock.lock();
  }
}

}  // namespace relaycore::websocket::detail
