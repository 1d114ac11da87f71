// The write side of a connection: the outbound queue (scatter/gather, in order), the byte
// accounting behind queued_bytes(), the close handshake, and the end of the connection.
#include <algorithm>

#include "websocket/connection.hpp"

namespace relaycore::websocket::detail {
namespace {

// Frames per async_write; each takes up to four buffers, well under IOV_MAX.
constexpr std::size_t kMaxBatch = 128;

}  // namespace

void WsConnection::send(Frame frame) {
  if (!accepting_.load(std::memory_order_acquire)) return;
  const std::size_t n = frame.size();
  const std::size_t total = queued_.fetch_add(n, std::memory_order_acq_rel) + n;
  if (total > context_->options.max_outbound_bytes) {
    queued_.fetch_sub(n, std::memory_order_acq_rel);
    if (!overflowed_.exchange(true)) {
      bump(context_->counters.outbound_overflow_closes);
      abort();
    }
    return;
  }
  // A weak reference: a frame posted after the I/O threads are gone must not keep the
  // connection (and through it the io_context holding the frame) alive in a cycle.
  try {
    asio::post(strand_, [weak = weak_from_this(), frame = std::move(frame), n]() mutable {
      if (std::shared_ptr<WsConnection> self = weak.lock()) {
        self->enqueue_text(std::move(frame), n);
      }
    });
  } catch (...) {
    queued_.fetch_sub(n, std::memory_order_acq_rel);  // out of memory: the frame is dropped
  }
}

void WsConnection::close(std::string_view reason) {
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

void WsConnection::enqueue_text(Frame frame, std::size_t counted) {
  if (state_ != State::kOpen) {
    queued_.fetch_sub(counted, std::memory_order_acq_rel);  // dropped: closing or closed
    return;
  }
  OutItem item;
  item.header = encode_header(Opcode::kText, counted);
  item.payload = std::move(frame);
  item.counted = counted;
  queue_.push_back(std::move(item));
  write_next();
}

void WsConnection::enqueue_control(Opcode opcode, std::string payload) {
  if (state_ != State::kOpen) return;
  if (opcode == Opcode::kPong) {
    pong_ = std::move(payload);  // replaces a pong not yet written (RFC 6455 5.5.3)
  } else {
    OutItem item;
    item.header = encode_header(opcode, payload.size());
    item.payload = Frame(std::move(payload));
    queue_.push_back(std::move(item));
  }
  write_next();
}

void WsConnection::write_next() {
  if (write_in_progress_ || state_ == State::kClosed) return;
  if (queue_.empty() && !pong_) return;
  writing_.clear();
  if (pong_ && state_ == State::kOpen) {
    OutItem item;
    item.header = encode_header(Opcode::kPong, pong_->size());
    item.payload = Frame(std::move(*pong_));
    writing_.push_back(std::move(item));
  }
  pong_.reset();
  while (!queue_.empty() && writing_.size() < kMaxBatch) {
    const bool last = queue_.front().last;
    writing_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    if (last) break;
  }
  if (writing_.empty()) return;
  // Build the buffers only now: a Frame's short head lives inside the Frame (small-string
  // storage), so the items must be where they stay until the write completes.
  buffers_.clear();
  for (const OutItem& item : writing_) {
    if (item.header.size > 0) buffers_.emplace_back(item.header.bytes.data(), item.header.size);
    for (std::string_view part : item.payload.parts()) {
      if (!part.empty()) buffers_.emplace_back(part.data(), part.size());
    }
  }
  write_in_progress_ = true;
  asio::async_write(socket_, buffers_,
                    [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                      self->on_written(ec);
                    });
}

void WsConnection::on_written(const asio::error_code& ec) {
  write_in_progress_ = false;
  std::size_t written = 0;
  bool last = false;
  for (const OutItem& item : writing_) {
    written += item.counted;
    last = last || item.last;
  }
  writing_.clear();
  buffers_.clear();
  queued_.fetch_sub(written, std::memory_order_acq_rel);
  if (state_ == State::kClosed) return;
  if (ec) {
    finish();
    return;
  }
  // A query parked on this full connection resumes now that there is room.
  if (written > 0 && session_) session_->on_drain();
  if (last) {
    // Our last bytes are out. If the peer's close has already come, the handshake is complete
    // and we close at once. Otherwise half-close and read until the peer answers or hangs up,
    // so the kernel does not reset the connection over unread input and lose what we sent.
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    if (peer_closed_) {
      finish();
    } else {
      read_more();
    }
    return;
  }
  write_next();
}

void WsConnection::begin_closing(OutItem last_item) {
  state_ = State::kClosing;
  accepting_.store(false, std::memory_order_release);
  cancel_timer(idle_timer_);
  last_item.last = true;
  queue_.push_back(std::move(last_item));
  close_timer_.expires_after(kCloseTimeout);
  close_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (!ec) self->finish();
  });
  write_next();
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
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  // Frames still queued will never be written; an in-progress write accounts for its own
  // items when its handler runs.
  std::size_t dropped = 0;
  for (const OutItem& item : queue_) dropped += item.counted;
  queue_.clear();
  pong_.reset();
  queued_.fetch_sub(dropped, std::memory_order_acq_rel);
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
