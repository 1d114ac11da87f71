// The write side of a connection: the outbound queue and the one gather write that empties it,
// the byte accounting behind queued_bytes(), the close handshake, and the end of the connection.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "websocket/connection.hpp"

namespace relaycore::websocket::detail {
namespace {

// Buffers per sendmsg(); each item takes up to four. Linux takes up to 1024 (IOV_MAX).
constexpr std::size_t kMaxIov = 256;
// Shorter messages (EOSE, most OKs) gain nothing from compression and go out as they are.
constexpr std::size_t kMinCompressed = 64;
// How long a burst's compressor outlives its last message: long enough to bridge the gaps of a
// streamed history or of replies sent one by one, short next to an idle connection's life.
constexpr std::chrono::milliseconds kDeflateQuiet{20};

}  // namespace

void WsConnection::send(Frame frame) { send_batch(std::span<Frame>(&frame, 1)); }

void WsConnection::send_batch(std::span<Frame> frames) {
  if (frames.empty() || !accepting_.load(std::memory_order_acquire)) return;
  std::size_t n = 0;
  for (const Frame& frame : frames) n += frame.size();
  const std::size_t total = queued_.fetch_add(n, std::memory_order_acq_rel) + n;
  if (total > context_->options.max_outbound_bytes) {
    queued_.fetch_sub(n, std::memory_order_acq_rel);
    if (!overflowed_.exchange(true)) {
      bump(context_->counters.outbound_overflow_closes);
      abort();
    }
    return;
  }
  try {
    push_text(frames, n);
  } catch (...) {
    // Out of memory while queueing: the connection can no longer keep its order, so it ends.
    abort();
  }
}

void WsConnection::close(std::string_view reason) {
  // Frames sent after close() are dropped even before the strand queues the close frame, since
  // send() writes without going through the strand.
  accepting_.store(false, std::memory_order_release);
  try {
    asio::post(strand_, [weak = weak_from_this(), reason = std::string(reason)] {
      std::shared_ptr<WsConnection> self = weak.lock();
      if (!self) return;
      self->start_close(reason.empty() ? kCloseNormal : kClosePolicyViolation, reason);
    });
  } catch (...) {
    // Out of memory; nothing sensible is left to do, and no exception may reach relaycore.
  }
}

std::size_t WsConnection::queued_bytes() const { return queued_.load(std::memory_order_acquire); }

void WsConnection::going_away() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->state_ == State::kHttp) {
      self->finish();
    } else {
      self->start_close(kCloseGoingAway, "server stopping");
    }
  });
}

void WsConnection::abort() {
  try {
    asio::post(strand_, [weak = weak_from_this()] {
      if (std::shared_ptr<WsConnection> self = weak.lock()) self->finish();
    });
  } catch (...) {
    // Out of memory; called from send(), which must not throw.
  }
}

void WsConnection::push_text(std::span<Frame> frames, std::size_t counted) {
  std::unique_lock lock(out_mu_);
  if (!out_open_ || out_last_) {
    lock.unlock();
    queued_.fetch_sub(counted, std::memory_order_acq_rel);  // dropped: closing or closed
    return;
  }
  bool reply = false;
  for (Frame& frame : frames) {
    reply = reply || !frame.event();
    OutItem item;
    item.counted = frame.size();
    if (deflate_ && item.counted >= kMinCompressed) {
      std::string bytes = compress_locked(frame);
      item.header = encode_header(Opcode::kText, bytes.size(), true);
      item.payload = Frame(std::move(bytes));
    } else {
      item.header = encode_header(Opcode::kText, item.counted);
      item.payload = std::move(frame);
    }
    out_.push_back(std::move(item));
  }
  if (out_waiting_) return;  // the strand writes it once the socket has room
  if (!reply) {
    // Fan-out: one flush per connection, however many frames join it before it runs.
    pooled_ += counted;
    context_->writers.add_backlog(counted);
    const bool schedule = !out_scheduled_;
    out_scheduled_ = true;
    lock.unlock();
    if (schedule) context_->writers.push(weak_from_this());
    context_->writers.pace();
    return;
  }
  const WriteOutcome outcome = write_out_locked();
  lock.unlock();
  after_write(outcome, false);
}

std::string WsConnection::compress_locked(const Frame& frame) {
  Deflate& deflate = context_->deflate;
  // A burst: frames wait ahead of this one (the socket is full, or a batch or a writer thread's
  // flush is pending), or replies follow each other, so it may refer back to them. A lone
  // EVENT on an idle connection takes the body shared by every subscriber instead.
  if (!held_deflater_ && deflate_->server_context_takeover &&
      (out_waiting_ || out_head_ < out_.size() || !frame.event())) {
    held_deflater_ = deflate.hold(deflate_->server_window_bits);
  }
  if (!held_deflater_) return deflate.compress_frame(frame, deflate_->server_window_bits);
  deflate_recent_ = true;
  return deflate.compress_frame(held_deflater_, frame);
}

bool WsConnection::held_deflater_used() {
  std::lock_guard lock(out_mu_);
  return held_deflater_ != nullptr;
}

void WsConnection::release_idle_deflater(bool now) {
  Deflate::Held held;
  {
    std::lock_guard lock(out_mu_);
    if (!now) release_posted_ = false;
    if (out_head_ < out_.size() || out_waiting_) return;  // the next drain asks again
    if (deflate_recent_ && !now) {
      // Still in use since the last look: keep it for another quiet spell.
      deflate_recent_ = false;
      release_posted_ = true;
      arm_deflate_timer();
      return;
    }
    held = std::move(held_deflater_);
    deflate_recent_ = false;
  }
  context_->deflate.release(std::move(held));
}

void WsConnection::arm_deflate_timer() {
  deflate_timer_.expires_after(kDeflateQuiet);
  deflate_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (!ec && self->state_ != State::kClosed) self->release_idle_deflater();
  });
}

void WsConnection::flush_queued() {
  WriteOutcome outcome;
  {
    std::lock_guard lock(out_mu_);
    out_scheduled_ = false;
    if (!out_open_ || out_waiting_) return;
    outcome = write_out_locked();
  }
  after_write(outcome, false);
}

void WsConnection::push(OutItem item, bool pong) {
  std::unique_lock lock(out_mu_);
  if (!out_open_ || out_last_) return;
  if (pong && pong_at_ != kNoPong) {
    out_[pong_at_] = std::move(item);  // only the latest unanswered ping gets a pong
    return;
  }
  out_last_ = item.last;
  out_.push_back(std::move(item));
  WriteOutcome outcome;
  if (!out_waiting_) outcome = write_out_locked();
  // Still queued and not begun (the socket is full): a later pong may replace it.
  if (pong && out_waiting_ && (out_.size() - 1 > out_head_ || out_offset_ == 0)) {
    pong_at_ = out_.size() - 1;
  }
  lock.unlock();
  after_write(outcome, true);
}

void WsConnection::enqueue_control(Opcode opcode, std::string payload) {
  if (state_ != State::kOpen) return;
  OutItem item;
  item.header = encode_header(opcode, payload.size());
  item.payload = Frame(std::move(payload));
  push(std::move(item), opcode == Opcode::kPong);
}

WsConnection::WriteOutcome WsConnection::write_out_locked() {
  WriteOutcome outcome;
  while (out_head_ < out_.size()) {
    std::array<iovec, kMaxIov> iov;
    std::size_t n = 0;
    std::size_t skip = out_offset_;
    for (std::size_t i = out_head_; i < out_.size() && n + 4 <= kMaxIov; ++i) {
      const OutItem& item = out_[i];
      auto add = [&](const void* data, std::size_t size) {
        if (skip >= size) {
          skip -= size;
          return;
        }
        iov[n].iov_base = const_cast<char*>(static_cast<const char*>(data) + skip);
        iov[n].iov_len = size - skip;
        skip = 0;
        ++n;
      };
      add(item.header.bytes.data(), item.header.size);
      for (std::string_view part : item.payload.parts()) add(part.data(), part.size());
      if (item.last) break;
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = n;
    const ssize_t w = ::sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        outcome.blocked = true;
      } else {
        outcome.failed = true;
      }
      break;
    }
    // Drop what went out; the item cut short stays at the front with its offset.
    auto left = static_cast<std::size_t>(w);
    while (out_head_ < out_.size()) {
      OutItem& item = out_[out_head_];
      const std::size_t size = item.header.size + item.payload.size();
      if (out_offset_ + left < size) {
        out_offset_ += left;
        break;
      }
      left -= size - out_offset_;
      out_offset_ = 0;
      outcome.bytes += item.counted;
      outcome.last = outcome.last || item.last;
      item = OutItem();  // releases the event now, not when the slot is reused
      if (pong_at_ == out_head_) pong_at_ = kNoPong;
      ++out_head_;
    }
    if (out_offset_ > 0 && pong_at_ == out_head_) pong_at_ = kNoPong;  // started: keep it
  }
  if (out_head_ == out_.size()) {
    out_.clear();  // keeps the capacity: steady traffic allocates nothing here
    out_head_ = 0;
  } else if (out_head_ > 64 && out_head_ * 2 > out_.size()) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
    if (pong_at_ != kNoPong) pong_at_ -= out_head_;
    out_head_ = 0;
  }
  out_waiting_ = outcome.blocked || outcome.failed;
  // Written, or left to a full socket: either way no longer the writers' backlog.
  context_->writers.release_backlog(std::exchange(pooled_, 0));
  if (held_deflater_ && !release_posted_ && out_head_ == out_.size()) {
    outcome.release_deflater = true;
    release_posted_ = true;
  }
  return outcome;
}

void WsConnection::after_write(const WriteOutcome& outcome, bool on_strand) {
  if (outcome.bytes > 0) queued_.fetch_sub(outcome.bytes, std::memory_order_acq_rel);
  if (outcome.failed) {
    if (on_strand) {
      finish();
    } else {
      abort();
    }
    return;
  }
  if (outcome.release_deflater) {
    // The burst is written. The compressor goes back only once a quiet spell has passed without
    // a message compressed, so a burst with short gaps keeps referring back.
    asio::post(strand_, [self = shared_from_this()] { self->arm_deflate_timer(); });
  }
  if (outcome.last || outcome.blocked) {
    auto next = [self = shared_from_this(), outcome] {
      if (outcome.last) self->after_last();
      if (outcome.blocked) self->wait_writable();
    };
    if (on_strand) {
      next();
    } else {
      asio::post(strand_, std::move(next));
    }
  }
}

void WsConnection::wait_writable() {
  if (state_ == State::kClosed) return;
  socket_.async_wait(
      asio::socket_base::wait_write,
      [self = shared_from_this()](const asio::error_code& ec) { self->on_writable(ec); });
}

void WsConnection::on_writable(const asio::error_code& ec) {
  if (state_ == State::kClosed) return;
  if (ec) {
    finish();
    return;
  }
  WriteOutcome outcome;
  {
    std::lock_guard lock(out_mu_);
    out_waiting_ = false;
    outcome = write_out_locked();
  }
  after_write(outcome, true);
  // A query parked on this full connection resumes now that there is room.
  if (outcome.bytes > 0 && session_ && state_ != State::kClosed) session_->on_drain();
}

// Our last bytes are out. If the peer's close has already come, the handshake is complete and
// we close at once. Otherwise half-close and read until the peer answers or hangs up, so the
// kernel does not reset the connection over unread input and lose what we sent.
void WsConnection::after_last() {
  if (state_ == State::kClosed) return;
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  if (peer_closed_) {
    finish();
  } else {
    read_more();
  }
}

bool WsConnection::out_idle() {
  std::lock_guard lock(out_mu_);
  return out_head_ == out_.size() && !out_waiting_;
}

void WsConnection::begin_closing(OutItem last_item) {
  state_ = State::kClosing;
  accepting_.store(false, std::memory_order_release);
  cancel_timer(idle_timer_);
  last_item.last = true;
  close_timer_.expires_after(kCloseTimeout);
  close_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (!ec) self->finish();
  });
  push(std::move(last_item));
}

void WsConnection::start_close(std::uint16_t code, std::string_view reason) {
  if (state_ == State::kHttp) {
    finish();
    return;
  }
  if (state_ != State::kOpen) return;
  std::string payload = close_payload(code, reason);
  OutItem item;
  item.header = encode_header(Opcode::kClose, payload.size());
  item.payload = Frame(std::move(payload));
  begin_closing(std::move(item));
}

void WsConnection::fail(std::uint16_t code, std::string_view reason) {
  bump(code == kCloseMessageTooBig ? context_->counters.oversize_closes
                                   : context_->counters.protocol_errors);
  start_close(code, reason);
}

void WsConnection::finish() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  accepting_.store(false, std::memory_order_release);
  cancel_timer(idle_timer_);
  cancel_timer(close_timer_);
  cancel_timer(deflate_timer_);
  // Frames still queued will never be written. Writes happen under out_mu_, so once it is
  // released here no thread writes to the descriptor again and it can be closed.
  std::size_t dropped = 0;
  Deflate::Held held;
  {
    std::lock_guard lock(out_mu_);
    out_open_ = false;
    context_->writers.release_backlog(std::exchange(pooled_, 0));
    for (std::size_t i = out_head_; i < out_.size(); ++i) dropped += out_[i].counted;
    std::vector<OutItem>().swap(out_);
    out_head_ = out_offset_ = 0;
    pong_at_ = kNoPong;
    held = std::move(held_deflater_);
  }
  context_->deflate.release(std::move(held));
  queued_.fetch_sub(dropped, std::memory_order_acq_rel);
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (!in_flight_) hand_over_close();
}

// on_close() runs on the message pool, after any on_message(), and the connection leaves the
// registry only once it has returned, so Server::stop() can wait for every on_close().
void WsConnection::hand_over_close() {
  if (close_handed_) return;
  close_handed_ = true;
  std::shared_ptr<Session> session = std::move(session_);
  if (!session) {
    context_->remove(this);
    return;
  }
  context_->messages.post([self = shared_from_this(), session = std::move(session)] {
    try {
      session->on_close();
    } catch (...) {
      // Nothing to do: the connection is gone either way.
    }
    self->context_->remove(self.get());
  });
}

}  // namespace relaycore::websocket::detail
