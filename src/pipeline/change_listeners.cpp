#include "pipeline/change_listeners.hpp"

#include <algorithm>
#include <deque>
#include <utility>

#include "pipeline/call_host.hpp"

namespace relaycore::pipeline {

struct ChangeListeners::Entry {
  ChangeListener listener;
  std::mutex mu;  // guards queue, scheduled, gap
  std::deque<std::shared_ptr<const ChangeBatch>> queue;
  bool scheduled = false;
  bool gap = false;
  std::atomic<bool> removed{false};
  std::mutex deliver_mu;
};

class ChangeListeners::Handle final : public ListenerHandle {
 public:
  Handle(std::shared_ptr<ChangeListeners> owner, std::shared_ptr<Entry> entry)
      : owner_(std::move(owner)), entry_(std::move(entry)) {}
  ~Handle() override { owner_->remove(entry_); }

 private:
  std::shared_ptr<ChangeListeners> owner_;
  std::shared_ptr<Entry> entry_;
};

ChangeListeners::ChangeListeners(std::shared_ptr<CallbackExecutor> executor, std::size_t max_queued,
                                 Log log)
    : executor_(std::move(executor)),
      max_queued_(std::max<std::size_t>(1, max_queued)),
      log_(std::move(log)) {}

std::unique_ptr<ListenerHandle> ChangeListeners::add(ChangeListener listener) {
  auto entry = std::make_shared<Entry>();
  entry->listener = std::move(listener);
  {
    std::lock_guard lock(mu_);
    entries_.push_back(entry);
    count_.store(entries_.size(), std::memory_order_release);
  }
  return std::make_unique<Handle>(shared_from_this(), std::move(entry));
}

void ChangeListeners::remove(const std::shared_ptr<Entry>& entry) {
  entry->removed.store(true, std::memory_order_release);
  {
    std::lock_guard lock(mu_);
    std::erase(entries_, entry);
    count_.store(entries_.size(), std::memory_order_release);
  }
  if (!executor_->on_callback_thread()) std::lock_guard wait(entry->deliver_mu);
}

void ChangeListeners::deliver(const std::shared_ptr<Entry>& e, const Log& log) {
  std::lock_guard delivering(e->deliver_mu);
  for (;;) {
    std::shared_ptr<const ChangeBatch> next;
    bool gap = false;
    {
      std::lock_guard lock(e->mu);
      if (e->queue.empty() || e->removed.load(std::memory_order_acquire)) {
        e->scheduled = false;
        return;
      }
      next = std::move(e->queue.front());
      e->queue.pop_front();
      gap = std::exchange(e->gap, false);
    }
    if (gap) {
      ChangeBatch copy = *next;
      copy.gap = true;
      call_host(log, "a change listener threw", [&] { e->listener(copy); });
    } else {
      call_host(log, "a change listener threw", [&] { e->listener(*next); });
    }
  }
}

void ChangeListeners::publish(const std::shared_ptr<const ChangeBatch>& batch) {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    std::lock_guard lock(mu_);
    entries = entries_;
  }
  for (const std::shared_ptr<Entry>& e : entries) {
    std::lock_guard lock(e->mu);
    if (e->queue.size() >= max_queued_) {
      // The listener is too far behind: the oldest batch goes, and the next it sees says so.
      e->queue.pop_front();
      e->gap = true;
    }
    e->queue.push_back(batch);
    if (e->scheduled) continue;
    e->scheduled = true;
    executor_->post([e, log = log_] { deliver(e, log); });
  }
}

}  // namespace relaycore::pipeline
