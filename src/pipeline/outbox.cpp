#include "pipeline/outbox.hpp"

#include "pipeline/call_host.hpp"

namespace relaycore::pipeline {
namespace {

constexpr std::string_view kSlowReason = "slow consumer: outbound queue over its cap";

}  // namespace

Outbox::Outbox(std::shared_ptr<Connection> connection, std::size_t hard_cap, Log log)
    : hard_cap_(hard_cap), log_(std::move(log)), connection_(std::move(connection)) {}

void Outbox::enqueue(Frame frame) {
  std::lock_guard lock(mu_);
  if (closed()) return;
  out_bytes_ += frame.size();
  out_.push_back(std::move(frame));
}

void Outbox::flush() {
  std::unique_lock lock(mu_);
  if (flushing_ || !connection_) return;
  flushing_ = true;
  std::shared_ptr<Connection> conn = connection_;
  bool slow = false;
  while (!out_.empty() && !closed() && !slow) {
    std::deque<Frame> batch;
    batch.swap(out_);
    out_bytes_ = 0;
    lock.unlock();
    for (Frame& f : batch) {
      if (conn->queued_bytes() + f.size() > hard_cap_) {
        slow = true;
        break;
      }
      conn->send(std::move(f));
    }
    lock.lock();
  }
  flushing_ = false;
  std::shared_ptr<Connection> to_close;
  std::string reason;
  if (close_pending_) {
    to_close = take_for_close_locked();
    reason = std::move(close_reason_);
  }
  lock.unlock();
  if (to_close)
    call_host(log_, "session: closing a connection threw", [&] { to_close->close(reason); });
  if (slow) close_slow_consumer();
}

void Outbox::send(Frame frame) {
  enqueue(std::move(frame));
  flush();
}

std::size_t Outbox::queued_bytes_locked() const {
  std::size_t n = out_bytes_;
  if (connection_) n += connection_->queued_bytes();
  return n;
}

bool Outbox::has_room(std::size_t bytes) const {
  std::lock_guard lock(mu_);
  if (closed()) return false;
  const std::size_t queued = queued_bytes_locked();
  // An empty connection takes any one frame, however large, or a frame over the soft cap
  // could never be sent.
  return queued == 0 || queued + bytes <= hard_cap_ / 2;
}

bool Outbox::drained() const {
  std::lock_guard lock(mu_);
  return !closed() && queued_bytes_locked() <= hard_cap_ / 4;
}

std::shared_ptr<Connection> Outbox::take_for_close_locked() {
  close_pending_ = false;
  out_.clear();
  out_bytes_ = 0;
  return std::move(connection_);
}

bool Outbox::close_slow_consumer() { return close_with(std::string(kSlowReason), true); }

bool Outbox::close(std::string_view reason) {
  flush();
  return close_with(std::string(reason), false);
}

bool Outbox::close_with(std::string reason, bool slow) {
  std::shared_ptr<Connection> to_close;
  {
    std::lock_guard lock(mu_);
    if (closed_.exchange(true, std::memory_order_acq_rel)) return false;
    close_pending_ = true;
    close_reason_ = std::move(reason);
    out_.clear();
    out_bytes_ = 0;
    // A flush in progress is sending without the lock; it closes once it is done.
    if (!flushing_) {
      to_close = take_for_close_locked();
      reason = std::move(close_reason_);
    }
  }
  // Counted and cleaned up before the host hears of it.
  if (on_closed_) on_closed_(slow);
  if (to_close)
    call_host(log_, "session: closing a connection threw", [&] { to_close->close(reason); });
  return true;
}

bool Outbox::detach() {
  std::lock_guard lock(mu_);
  const bool was_open = !closed_.exchange(true, std::memory_order_acq_rel);
  close_pending_ = false;
  out_.clear();
  out_bytes_ = 0;
  connection_.reset();
  return was_open;
}

}  // namespace relaycore::pipeline
