#include "websocket/writer_pool.hpp"

#include <algorithm>

#include "websocket/connection.hpp"

namespace relaycore::websocket::detail {

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
    wake = ready_.empty();
    ready_.push_back(std::move(connection));
  }
  if (wake) cv_.notify_one();
}

void WriterPool::join() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    ready_.clear();
  }
  cv_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WriterPool::work() {
  std::vector<std::weak_ptr<WsConnection>> mine;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
    if (stopping_) return;
    // Take a share from the back (the order between connections does not matter; each keeps
    // its own) and wake another thread for the rest.
    const std::size_t take = std::min(ready_.size(), std::max(kShare, ready_.size() / count_));
    mine.assign(std::make_move_iterator(ready_.end() - static_cast<std::ptrdiff_t>(take)),
                std::make_move_iterator(ready_.end()));
    ready_.resize(ready_.size() - take);
    const bool more = !ready_.empty();
    lock.unlock();
    if (more) cv_.notify_one();
    for (const std::weak_ptr<WsConnection>& weak : mine) {
      if (std::shared_ptr<WsConnection> connection = weak.lock()) connection->flush_queued();
    }
    mine.clear();
    lock.lock();
  }
}

}  // namespace relaycore::websocket::detail
