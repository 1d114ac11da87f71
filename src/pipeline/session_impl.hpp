// SessionImpl: relaycore's side of one client connection. It parses frames, routes them to the
// pipeline, owns the session's subscriptions and keeps its outgoing frames in order.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "pipeline/core.hpp"
#include "pipeline/subscription.hpp"
#include "relaycore/connection.hpp"
#include "relaycore/message.hpp"

namespace relaycore::pipeline {

class SessionImpl final : public Session, public std::enable_shared_from_this<SessionImpl> {
 public:
  SessionImpl(std::shared_ptr<Core> core, std::shared_ptr<Connection> connection,
              ClientInfo client);
  ~SessionImpl() override;

  // Sends the AUTH challenge when the relay asks for it on connect.
  void start();

  void on_message(std::string_view frame) override;
  void on_close() override;
  std::string auth_challenge() const override { return challenge_; }

  // Queues a frame without touching the connection; safe under the caller's locks.
  void enqueue(Frame frame);
  // Writes queued frames to the connection unless another thread already is. Call with no
  // relaycore lock held: it calls into the host.
  void flush();
  // enqueue() then flush().
  void send(Frame frame);

  // Waits, up to a few seconds, until the connection has room for `bytes` more; used to pace
  // history so a large result set does not look like a slow reader. False if it never did.
  bool wait_for_room(std::size_t bytes);

  // Closes the connection because its reader fell behind.
  void close_slow_consumer();

  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

 private:
  void handle(EventMessage&& msg);
  void handle(ReqMessage&& msg);
  void handle(CloseMessage&& msg);
  void handle(CountMessage&& msg);
  void handle(AuthMessage&& msg);
  void send_challenge();
  // Checks a NIP-42 auth event against this session's challenge and the relay URL.
  Status check_auth(const Event& event) const;
  // Runs the host's FilterPolicy; false (after answering CLOSED) when the query is refused.
  bool allow_filters(const std::string& sub_id, const std::vector<Filter>& filters);
  void end_subscriptions();
  bool mark_closed();

  const std::shared_ptr<Core> core_;
  const std::string challenge_;

  mutable std::mutex mu_;  // guards client_, subs_
  std::shared_ptr<const ClientInfo> client_;
  std::unordered_map<std::string, std::shared_ptr<Subscription>> subs_;

  std::mutex out_mu_;  // guards connection_, out_, flushing_
  std::shared_ptr<Connection> connection_;
  std::deque<Frame> out_;
  bool flushing_ = false;
  std::atomic<bool> closed_{false};
};

}  // namespace relaycore::pipeline
