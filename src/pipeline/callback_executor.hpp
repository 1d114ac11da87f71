// CallbackExecutor: the one thread ("rc-callback") on which a relay runs its in-process host
// callbacks: subscription events, change listeners and submit_async completions. Keeping them
// off the writer, verify and reader threads means a host callback can never stall a commit, and
// a callback may call back into the Relay (submit, query, subscribe) without deadlock.
//
// Producers bound what they post themselves (a subscription by its outbox cap, a listener by
// its own queue); the executor's own queue holds one entry per ready target, not per item.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "util/log.hpp"

namespace relaycore::pipeline {

class CallbackExecutor {
 public:
  // `log` hears of callbacks that threw.
  explicit CallbackExecutor(Log log);
  ~CallbackExecutor();
  CallbackExecutor(const CallbackExecutor&) = delete;
  CallbackExecutor& operator=(const CallbackExecutor&) = delete;

  // Runs `task` on the callback thread, after the tasks posted before it. Returns false (and
  // drops the task) once stop() has begun. Within a CallbackBatch on the calling thread, the
  // callback thread is woken once, as the batch ends, rather than for each task.
  bool post(std::function<void()> task);

  // Runs what is queued, then joins the thread. Safe to call twice. Called on the callback
  // thread itself (the last owner let go inside a callback), it lets the thread finish alone.
  void stop();

  // True on the callback thread.
  bool on_callback_thread() const noexcept;

  // How many times the callback thread has gone to sleep for want of work; each sleep but the
  // last ended in a wake-up, which CallbackBatch saves.
  std::uint64_t sleeps() const;

 private:
  // Shared with the thread, which may outlive the executor (see stop()).
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> tasks;
    bool stopping = false;
    std::uint64_t sleeps = 0;
    Log log;
  };
  static void run(const std::shared_ptr<State>& state);
  friend class CallbackBatch;

  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::thread thread_;
};

// While one lives on a thread, CallbackExecutor::post() there queues its task without waking the
// callback thread, and the outermost batch wakes each executor posted to once as it ends. A stage
// that completes many host callbacks at once (the OKs of a commit, a dispatch batch) so wakes the
// callback thread once per batch, not once per callback, each wake-up being a system call and a
// context switch. Tasks posted from other threads are not held back.
class CallbackBatch {
 public:
  CallbackBatch();
  ~CallbackBatch();
  CallbackBatch(const CallbackBatch&) = delete;
  CallbackBatch& operator=(const CallbackBatch&) = delete;
};

}  // namespace relaycore::pipeline
