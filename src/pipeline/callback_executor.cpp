#include "pipeline/callback_executor.hpp"

#include "pipeline/call_host.hpp"
#include "pipeline/thread_group.hpp"

namespace relaycore::pipeline {
namespace {

// This thread's CallbackBatch state: how deep the batches are nested and the executors posted to
// meanwhile (as their shared state, which outlives a stopped executor). The vector keeps its
// capacity from one batch to the next.
struct Batch {
  int depth = 0;
  std::vector<std::shared_ptr<void>> woken;
};
thread_local Batch t_batch;

}  // namespace

CallbackBatch::CallbackBatch() { ++t_batch.depth; }

CallbackBatch::~CallbackBatch() {
  Batch& b = t_batch;
  if (--b.depth > 0) return;
  for (const std::shared_ptr<void>& state : b.woken) {
    static_cast<CallbackExecutor::State*>(state.get())->cv.notify_one();
  }
  b.woken.clear();
}

CallbackExecutor::CallbackExecutor(Log log) {
  state_->log = std::move(log);
  thread_ = std::thread([state = state_] { run(state); });
}

CallbackExecutor::~CallbackExecutor() { stop(); }

bool CallbackExecutor::post(std::function<void()> task) {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return false;
    state_->tasks.push_back(std::move(task));
  }
  Batch& b = t_batch;
  if (b.depth > 0) {
    try {
      for (const std::shared_ptr<void>& noted : b.woken) {
        if (noted.get() == state_.get()) return true;
      }
      b.woken.push_back(state_);
      return true;
    } catch (...) {
      // Out of memory: wake the thread now instead.
    }
  }
  state_->cv.notify_one();
  return true;
}

void CallbackExecutor::stop() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  if (!thread_.joinable()) return;
  if (on_callback_thread()) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

std::uint64_t CallbackExecutor::sleeps() const {
  std::lock_guard lock(state_->mu);
  return state_->sleeps;
}

bool CallbackExecutor::on_callback_thread() const noexcept {
  return std::this_thread::get_id() == thread_.get_id();
}

void CallbackExecutor::run(const std::shared_ptr<State>& state) {
  name_this_thread("rc-callback");
  std::unique_lock lock(state->mu);
  for (;;) {
    if (state->tasks.empty() && !state->stopping) {
      ++state->sleeps;
      state->cv.wait(lock, [&] { return state->stopping || !state->tasks.empty(); });
    }
    if (state->tasks.empty()) return;  // stopping, and everything posted has run
    std::function<void()> task = std::move(state->tasks.front());
    state->tasks.pop_front();
    lock.unlock();
    call_host(state->log, "a callback threw", task);
    task = nullptr;  // whatever it captured is released off the lock
    lock.lock();
  }
}

}  // namespace relaycore::pipeline
