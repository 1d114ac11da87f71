#include "pipeline/outbox.hpp"

#include <algorithm>
#include <vector>

#include "pipeline/call_host.hpp"

namespace relaycore::pipeline {
namespace {

constexpr std::string_view kSlowReason = "slow consumer: outbound queue over its cap";

// This thread's FlushScope state: how deep the scopes are nested and the outboxes noted. The
// vector keeps its capacity from one scope to the next.
struct Deferred {
  int depth = 0;
  std::vector<std::shared_ptr<Outbox>> outboxes;
  std::vector<std::shared_ptr<Outbox>> flushing;
};
thread_local Deferred t_deferred;

}  // namespace

Outbox::Outbox(std::shared_ptr<Connection> connection, std::size_t hard_cap, Log log)
    : hard_cap_(hard_cap), log_(std::move(log)), connection_(std::move(connection)) {}

void Outbox::enqueue(Frame frame) {
  std::lock_guard lock(mu_);
  if (closed()) return;
  out_bytes_ += frame.size();
  out_.push_back(std::move(frame));
}

FlushScope::FlushScope() { ++t_deferred.depth; }

FlushScope::~FlushScope() {
  Deferred& d = t_deferred;
  if (--d.depth > 0) return;
  d.flushing.swap(d.outboxes);
  // One flush per outbox, however many frames were queued on it.
  std::sort(d.flushing.begin(), d.flushing.end());
  d.flushing.erase(std::unique(d.flushing.begin(), d.flushing.end()), d.flushing.end());
  for (const std::shared_ptr<Outbox>& outbox : d.flushing) outbox->flush_now();
  d.flushing.clear();
}

void Outbox::flush() {
  if (t_deferred.depth > 0) {
    try {
      t_deferred.outboxes.push_back(shared_from_this());
      return;
    } catch (...) {
      // Not owned by a shared_ptr, or out of memory: flush now instead.
    }
  }
  flush_now();
}

void Outbox::flush_now() {
  std::unique_lock lock(mu_);
  if (flushing_ || !connection_) return;
  flushing_ = true;
  std::shared_ptr<Connection> conn = connection_;
  bool slow = false;
  while (!out_.empty() && !closed() && !slow) {
    sending_.swap(out_);
    out_bytes_ = 0;
    lock.unlock();
    // The frames that fit under the hard cap go out together; the first that does not marks
    // the reader as slow.
    std::size_t queued = conn->queued_bytes();
    std::size_t fit = 0;
    for (; fit < sending_.size(); ++fit) {
      queued += sending_[fit].size();
      if (queued > hard_cap_) {
        slow = true;
        break;
      }
    }
    if (fit > 0) conn->send_batch(std::span<Frame>(sending_.data(), fit));
    sending_.clear();
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
  flush_now();  // the frames before the close go out first, even within a FlushScope
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
