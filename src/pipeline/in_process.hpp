// In-process access to the relay: typed queries, subscriptions whose events reach host
// callbacks on the callback thread, and change listeners. A subscription is an ordinary session
// whose Connection hands frames to callbacks instead of a socket, so it gets the REQ guarantees
// (history, EOSE, then live events exactly once) and the same caps and parking.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/callback_executor.hpp"
#include "pipeline/core.hpp"
#include "relaycore/connection.hpp"
#include "relaycore/subscribe.hpp"

namespace relaycore::pipeline {

class CallbackConnection final : public Connection,
                                 public std::enable_shared_from_this<CallbackConnection> {
 public:
  CallbackConnection(std::shared_ptr<CallbackExecutor> executor, SubscribeCallbacks callbacks,
                     Log log);

  // The session this connection serves, told of drains. Set once, before any frame.
  void attach(std::weak_ptr<Session> session) { session_ = std::move(session); }

  void send(Frame frame) override;
  // The relay ended the subscription (a slow subscriber): on_closed follows the frames queued.
  void close(std::string_view reason) override;
  std::size_t queued_bytes() const override { return bytes_.load(std::memory_order_acquire); }

  // The host closed the subscription: no callback starts after this returns.
  void cancel();

 private:
  void deliver();
  void post_locked();

  const std::shared_ptr<CallbackExecutor> executor_;
  const SubscribeCallbacks callbacks_;
  const Log log_;
  std::weak_ptr<Session> session_;
  std::atomic<bool> cancelled_{false};
  std::atomic<std::size_t> bytes_{0};

  std::mutex mu_;  // guards frames_, scheduled_, close_reason_, ended_
  std::deque<Frame> frames_;
  bool scheduled_ = false;
  std::optional<std::string> close_reason_;
  bool ended_ = false;
  // Serialises deliver() with cancel(), so a callback never starts after cancel() returns.
  std::mutex deliver_mu_;
};

// Relay::query and Relay::count, on the caller's thread.
Status query_in_process(Core& core, const std::vector<Filter>& filters,
                        const std::function<bool(const EventPtr&)>& visit);
Result<std::uint64_t> count_in_process(Core& core, const std::vector<Filter>& filters);

}  // namespace relaycore::pipeline
