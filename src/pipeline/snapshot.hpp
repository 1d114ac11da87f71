// A value that one thread replaces as a whole while others read it on hot paths (every message,
// event and rate-limited request). get() is one atomic load: no lock and no reference count for
// the threads to contend on. The price is that every value set stays alive until the Snapshot
// goes, so that a reader's pointer never dangles; values are replaced by an operator's reload,
// a handful of times in a relay's life.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace relaycore::pipeline {

template <typename T>
class Snapshot {
 public:
  explicit Snapshot(std::unique_ptr<const T> value) { set(std::move(value)); }

  // The current value, valid for as long as the Snapshot.
  const T& get() const noexcept { return *current_.load(std::memory_order_acquire); }

  void set(std::unique_ptr<const T> value) {
    std::lock_guard lock(mu_);
    current_.store(value.get(), std::memory_order_release);
    kept_.push_back(std::move(value));
  }

 private:
  std::atomic<const T*> current_{nullptr};
  std::mutex mu_;  // serialises set(); guards kept_
  std::vector<std::unique_ptr<const T>> kept_;
};

}  // namespace relaycore::pipeline
