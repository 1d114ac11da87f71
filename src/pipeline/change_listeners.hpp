// ChangeListeners: the hosts' change listeners (Relay::listen). Each gets every commit's
// ChangeBatch, in commit order, on the callback thread, through a bounded queue of its own.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "pipeline/callback_executor.hpp"
#include "relaycore/subscribe.hpp"

namespace relaycore::pipeline {

// Change listeners: each gets every commit's ChangeBatch, in commit order, on the callback
// thread, through a queue of its own.
class ChangeListeners : public std::enable_shared_from_this<ChangeListeners> {
 public:
  ChangeListeners(std::shared_ptr<CallbackExecutor> executor, std::size_t max_queued, Log log);

  std::unique_ptr<ListenerHandle> add(ChangeListener listener);
  // Called by the dispatcher, in commit order. Cheap when nobody listens.
  void publish(const std::shared_ptr<const ChangeBatch>& batch);
  bool empty() const noexcept { return count_.load(std::memory_order_acquire) == 0; }

 private:
  struct Entry;
  class Handle;
  void remove(const std::shared_ptr<Entry>& entry);
  // Runs on the callback thread: hands the entry's queued batches to its listener.
  static void deliver(const std::shared_ptr<Entry>& entry, const Log& log);

  const std::shared_ptr<CallbackExecutor> executor_;
  const std::size_t max_queued_;
  const Log log_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Entry>> entries_;
  std::atomic<std::size_t> count_{0};
};

}  // namespace relaycore::pipeline
