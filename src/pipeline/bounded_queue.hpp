// BoundedQueue: the one queue type between pipeline stages. Every queue has a capacity; a full
// queue makes the producer wait, which is how back-pressure travels from a slow stage to the
// client that feeds it.
//
// Producers waiting on a full queue are woken by a consumer that takes items one at a time only
// once a quarter of the queue has drained, not for every item: when that consumer is the
// bottleneck the queue stays full, and a wake-up per item cost both threads a futex call and a
// context switch per item (measured in benchmarks/README.md, in-process ingest). A consumer
// that takes a batch wakes them every time; that is already one wake-up per batch, and making
// the producers wait for a second batch would idle them through a whole group commit.
//
// A producer that must never wait (a transport's I/O thread) first reserves a place with
// try_reserve(), which fails at once when the queue is full, and then fills it with
// push_reserved(), which never waits; a place it does not fill is given back with unreserve().
// Held places count as items, so a reservation can never be overrun by other producers.
//
// An item takes one place of the capacity unless the queue is given a Weigh that says how many
// it takes (a commit of 500 events takes 500). A queue is full once its items weigh the
// capacity or more, so one heavy item is still taken into a queue that has any room left.
// Reservations hold one place each and are for queues of items that weigh one.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

namespace relaycore::pipeline {

// The default Weigh: every item takes one place.
struct OnePlace {
  template <typename T>
  std::size_t operator()(const T&) const noexcept {
    return 1;
  }
};

template <typename T, typename Weigh = OnePlace>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity)
      : capacity_(capacity == 0 ? 1 : capacity), resume_at_(capacity_ - (capacity_ + 3) / 4) {}

  // Waits while the queue is full. Moves from `item` and returns true once queued; returns
  // false, leaving `item` untouched, when the queue is closed.
  bool push(T& item) {
    std::unique_lock lock(mu_);
    if (!closed_ && full_locked()) {
      ++producers_waiting_;
      not_full_.wait(lock, [&] { return closed_ || !full_locked(); });
      --producers_waiting_;
    }
    if (closed_) return false;
    load_ += Weigh()(item);
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  // Holds one place for push_reserved() and returns true, or returns false at once when the
  // queue is full or closed.
  bool try_reserve() {
    std::lock_guard lock(mu_);
    if (closed_ || full_locked()) return false;
    ++reserved_;
    return true;
  }

  // Fills a place held by try_reserve(); never waits. Returns false, leaving `item` untouched
  // and the place given back, when the queue was closed meanwhile.
  bool push_reserved(T& item) {
    std::unique_lock lock(mu_);
    --reserved_;
    if (closed_) {
      lock.unlock();
      not_full_.notify_all();
      return false;
    }
    load_ += Weigh()(item);
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  // Gives back a place held by try_reserve() and not filled.
  void unreserve() {
    std::unique_lock lock(mu_);
    --reserved_;
    const bool wake = producers_waiting_ > 0;
    lock.unlock();
    if (wake) not_full_.notify_all();
  }

  // Waits for at least one item, then moves up to `max` items into `out` (which it clears).
  // Returns false when the queue is closed and drained.
  bool pop_batch(std::vector<T>& out, std::size_t max) {
    out.clear();
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    return take(lock, out, max);
  }

  // As pop_batch(), but gives up after `timeout` with `out` empty and returns true.
  template <typename Duration>
  bool pop_batch_for(std::vector<T>& out, std::size_t max, Duration timeout) {
    out.clear();
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); })) {
      return true;
    }
    return take(lock, out, max);
  }

  // Moves queued items into `out`, after what it holds, until it holds `max`; never waits.
  void take_more(std::vector<T>& out, std::size_t max) {
    std::unique_lock lock(mu_);
    take(lock, out, max);
  }

  // Waits until the queue is closed or `timeout` has passed, whichever is first, without waking
  // for pushes; true when closed.
  template <typename Duration>
  bool wait_closed_for(Duration timeout) {
    std::unique_lock lock(mu_);
    return closed_cv_.wait_for(lock, timeout, [&] { return closed_; });
  }

  // pop_batch() of one item.
  bool pop(T& out) {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return false;
    load_ -= Weigh()(items_.front());
    out = std::move(items_.front());
    items_.pop_front();
    const bool wake = producers_waiting_ > 0 && load_ + reserved_ <= resume_at_;
    lock.unlock();
    if (wake) not_full_.notify_all();
    return true;
  }

  // Refuses new items; consumers still drain what is queued.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
    closed_cv_.notify_all();
  }

  // What the queued items weigh: their number, for a queue of items that weigh one. In the
  // unit of the capacity, so that a depth reads against it.
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return load_;
  }

  std::size_t capacity() const noexcept { return capacity_; }

 private:
  // Moves up to `max` items into `out` and releases the lock; false when there were none.
  bool take(std::unique_lock<std::mutex>& lock, std::vector<T>& out, std::size_t max) {
    if (items_.empty()) return false;
    while (!items_.empty() && out.size() < max) {
      load_ -= Weigh()(items_.front());
      out.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    const bool wake = producers_waiting_ > 0;
    lock.unlock();
    if (wake) not_full_.notify_all();
    return true;
  }

  bool full_locked() const { return load_ + reserved_ >= capacity_; }

  const std::size_t capacity_;
  const std::size_t resume_at_;  // pop() wakes waiting producers at this load or less
  mutable std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::condition_variable closed_cv_;  // only close() notifies it
  std::deque<T> items_;
  std::size_t load_ = 0;  // what items_ weigh
  std::size_t producers_waiting_ = 0;
  // Places held by try_reserve() and not yet filled or given back.
  std::size_t reserved_ = 0;
  bool closed_ = false;
};

// A place held in a BoundedQueue for an item that is not ready yet: taken with try_reserve() at
// construction, given back at destruction unless fill() used it.
template <typename T>
class ReservedPlace {
 public:
  explicit ReservedPlace(BoundedQueue<T>& queue) : queue_(queue.try_reserve() ? &queue : nullptr) {}
  ~ReservedPlace() {
    if (queue_ != nullptr) queue_->unreserve();
  }
  ReservedPlace(const ReservedPlace&) = delete;
  ReservedPlace& operator=(const ReservedPlace&) = delete;

  // False when the queue was full or closed: there is no place.
  explicit operator bool() const noexcept { return queue_ != nullptr; }

  // Queues `item` in the place, once; false (item untouched) when the queue closed meanwhile.
  bool fill(T& item) { return std::exchange(queue_, nullptr)->push_reserved(item); }

 private:
  BoundedQueue<T>* queue_;
};

}  // namespace relaycore::pipeline
