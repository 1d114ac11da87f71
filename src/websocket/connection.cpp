// The read side of a connection: request head, handshake, plain HTTP, inbound frames, message
// delivery to the session and the idle timer. The write side is in connection_write.cpp.
#include "websocket/connection.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace relaycore::websocket::detail {
namespace {

// Reads go into at least this much free buffer space.
constexpr std::size_t kReadChunk = 16 * 1024;
// Most messages handed to the session in one message-pool task.
constexpr std::size_t kMaxBatch = 64;
// Most messages a connection's handler takes on its I/O thread (Session::try_on_message) before
// the other connections on that thread get their turn. Without it a flood of cheap messages
// (REQs refused at parse time) kept its thread for a whole 16 KiB read at a time: the REQ p99
// of the clients sharing the thread was 8.6 ms in a build without it, 0.48 to 1.05 ms with it
// (benchmarks/README.md, isolation (b)).
constexpr std::size_t kMessagesPerTurn = 16;
// Read buffers an I/O thread keeps for its connections (see ReadBuffers).
constexpr std::size_t kPooledReadBuffers = 4;

// The read buffers of an I/O thread's connections that had nothing left to parse, for the next
// one with bytes to read. An idle connection holds no read space, and yet a message to it costs
// neither an allocation nor the zeroing of a fresh buffer. A connection's reads all run on its
// one I/O thread, so the pool needs no lock; a few buffers cover the connections that read in
// one turn of the thread.
class ReadBuffers {
 public:
  // A buffer of at least kReadChunk bytes, or an empty one when none is kept.
  std::vector<std::uint8_t> take() {
    if (free_.empty()) return {};
    std::vector<std::uint8_t> buffer = std::move(free_.back());
    free_.pop_back();
    return buffer;
  }

  // Keeps `buffer` unless enough are kept or it grew for a large message; empties it either way.
  void give(std::vector<std::uint8_t>& buffer) {
    if (free_.size() < kPooledReadBuffers && buffer.size() >= kReadChunk &&
        buffer.size() <= 2 * kReadChunk) {
      free_.push_back(std::move(buffer));
    }
    std::vector<std::uint8_t>().swap(buffer);
  }

 private:
  std::vector<std::vector<std::uint8_t>> free_;
};

thread_local ReadBuffers t_read_buffers;

std::string format_endpoint(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  std::string host;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    host = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
  } else if (address.is_v6()) {
    host = "[" + address.to_string() + "]";
  } else {
    host = address.to_string();
  }
  return host + ":" + std::to_string(endpoint.port());
}

}  // namespace

WsConnection::WsConnection(std::shared_ptr<ServerContext> context, Socket socket)
    : context_(std::move(context)),
      socket_(std::move(socket)),
      strand_(socket_.get_executor()),
      idle_timer_(strand_),
      close_timer_(strand_),
      deflate_timer_(strand_),
      reader_(context_->options.max_message_bytes),
      fd_(socket_.native_handle()) {}

WsConnection::~WsConnection() { context_->deflate.release(std::move(held_deflater_)); }

void WsConnection::start() {
  asio::post(strand_, [self = shared_from_this()] {
    asio::error_code ec;
    self->socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    const asio::ip::tcp::endpoint peer = self->socket_.remote_endpoint(ec);
    if (!ec) self->remote_ = format_endpoint(peer);
    self->last_rx_ = std::chrono::steady_clock::now();
    const std::uint32_t timeout = self->context_->options.idle_timeout_seconds;
    if (timeout > 0) {
      self->arm_idle_timer(self->last_rx_ + std::chrono::milliseconds(500) * timeout);
    }
    self->read_more();
  });
}

void WsConnection::read_more() {
  if (reading_ || state_ == State::kClosed) return;
  if (begin_ == end_) {
    begin_ = end_ = 0;
    if (!readable_) {
      // Nothing is buffered: wait for bytes without holding a read buffer, so an idle
      // connection costs no read space (the 16 KiB would dominate its memory).
      t_read_buffers.give(buffer_);
      reading_ = true;
      socket_.async_wait(asio::socket_base::wait_read,
                         [self = shared_from_this()](const asio::error_code& ec) {
                           self->reading_ = false;
                           if (ec) return self->on_read(ec, 0);
                           self->readable_ = true;
                           self->read_more();
                         });
      return;
    }
  }
  readable_ = false;
  if (buffer_.size() - end_ < kReadChunk / 2) {
    // Move the unparsed tail (at most a partial header once open) to the front.
    if (begin_ > 0) std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    if (buffer_.empty()) buffer_ = t_read_buffers.take();
    if (buffer_.size() - end_ < kReadChunk / 2) buffer_.resize(end_ + kReadChunk);
  }
  std::size_t space = buffer_.size() - end_;
  if (state_ == State::kHttp) {
    // Never read far past the head limit: one byte more is enough to know it was exceeded.
    const std::size_t limit = context_->options.max_http_header_bytes + 1;
    const std::size_t have = end_ - begin_;
    space = std::min(space, limit > have ? limit - have : 1);
  }
  reading_ = true;
  socket_.async_read_some(asio::buffer(buffer_.data() + end_, space),
                          [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
}

void WsConnection::on_read(const asio::error_code& ec, std::size_t n) {
  reading_ = false;
  if (state_ == State::kClosed) return;
  if (ec) {
    finish();  // EOF or reset: the peer is gone, with or without a close handshake
    return;
  }
  end_ += n;
  last_rx_ = std::chrono::steady_clock::now();
  ping_sent_ = false;
  switch (state_) {
    case State::kHttp:
      process_http();
      break;
    case State::kOpen:
      process_frames();
      break;
    case State::kClosing:
      drain_closing();
      break;
    case State::kClosed:
      break;
  }
}

void WsConnection::process_http() {
  const std::string_view view(reinterpret_cast<const char*>(buffer_.data() + begin_),
                              end_ - begin_);
  const std::size_t max = context_->options.max_http_header_bytes;
  const std::size_t head_end = find_head_end(view);
  if (head_end == std::string_view::npos) {
    if (view.size() > max) {
      reject_http({431, "request head too large", false}, true);
    } else {
      read_more();
    }
    return;
  }
  if (head_end > max) {
    reject_http({431, "request head too large", false}, true);
    return;
  }
  std::optional<ParsedRequest> parsed = parse_request_head(view.substr(0, head_end));
  begin_ += head_end;
  if (!parsed) {
    reject_http({400, "malformed request", false}, false);
  } else if (!parsed->request.header("upgrade").empty()) {
    handle_upgrade(*parsed);
  } else {
    handle_plain_http(parsed->request);
  }
}

void WsConnection::handle_upgrade(const ParsedRequest& parsed) {
  Result<std::string, HttpError> accept = check_upgrade(parsed);
  if (!accept) {
    reject_http(accept.error(), false);
    return;
  }
  std::string extensions;
  if (context_->options.permessage_deflate) {
    deflate_ = negotiate_deflate(parsed.request);
    if (deflate_) {
      extensions = deflate_response(*deflate_);
      reader_.accept_compressed(&context_->deflate);
    }
  }
  OutItem response;
  response.payload = Frame(render_switching_protocols(*accept, extensions));
  state_ = State::kOpen;
  websocket_ = true;
  push(std::move(response));
  if (state_ == State::kClosed) return;  // the peer is already gone

  ClientInfo client;
  client.remote_address = remote_;
  const std::string& forwarded = context_->options.forwarded_header;
  if (!forwarded.empty()) client.forwarded_for = parsed.request.header_list(forwarded);
  std::shared_ptr<Session> session;
  try {
    session = context_->handler->on_open(shared_from_this(), std::move(client));
  } catch (...) {
    session = nullptr;
  }
  if (!session) {
    start_close(kCloseInternalError, "internal error");
    return;
  }
  session_ = std::move(session);
  process_frames();  // frames the client sent right behind its handshake
}

void WsConnection::handle_plain_http(const HttpRequest& request) {
  std::optional<HttpResponse> response;
  try {
    response = context_->handler->on_http(request);
  } catch (...) {
    response = HttpResponse{500, "text/plain", "internal error\n", {}};
  }
  if (!response) response = HttpResponse{404, "text/plain", "not found\n", {}};
  OutItem item;
  item.payload = Frame(render_response(*response, request.method == "HEAD"));
  item.last = true;
  begin_closing(std::move(item));
}

void WsConnection::reject_http(const HttpError& error, bool oversize) {
  bump(oversize ? context_->counters.oversize_closes : context_->counters.protocol_errors);
  OutItem item;
  item.payload = Frame(render_error(error));
  item.last = true;
  begin_closing(std::move(item));
}

void WsConnection::process_frames() {
  std::vector<std::string> batch;
  if (held_failure_ && state_ == State::kOpen && !in_flight_) {
    const Inbound failure = *std::exchange(held_failure_, std::nullopt);
    fail(failure.code, failure.error);
    return;
  }
  std::size_t handled = 0;
  while (state_ == State::kOpen && !in_flight_) {
    if (handled == kMessagesPerTurn) {
      // To the back of the thread's queue; the rest of the buffer waits for the next turn.
      asio::post(strand_, [self = shared_from_this()] { self->process_frames(); });
      return;
    }
    std::size_t consumed = 0;
    Inbound in = reader_.next(buffer_.data() + begin_, end_ - begin_, consumed);
    begin_ += consumed;
    switch (in.kind) {
      case Inbound::Kind::kNeedMore:
        if (!batch.empty()) return deliver(std::move(batch));
        read_more();
        return;
      case Inbound::Kind::kText:
        // Handled here when the session can do it without waiting; otherwise it and every
        // message after it go to the message pool, in order.
        if (batch.empty() && handle_here(in.payload)) {
          ++handled;
          break;
        }
        batch.push_back(std::move(in.payload));
        // Messages already read go to the session in one task, which saves two thread hand-offs
        // per message under pipelined load. Only whole text frames join a batch: a control
        // frame waits, as it always has, until the messages before it have been handled.
        if (batch.size() < kMaxBatch && end_ - begin_ >= 2 && buffer_[begin_] == 0x81 &&
            (buffer_[begin_ + 1] & 0x80) != 0) {
          break;
        }
        return deliver(std::move(batch));
      case Inbound::Kind::kPing:
        enqueue_control(Opcode::kPong, std::move(in.payload));
        break;
      case Inbound::Kind::kPong:
        break;
      case Inbound::Kind::kClose:
        // Echo the peer's code (1000 when it gave none), then hang up.
        peer_closed_ = true;
        start_close(in.code == kCloseNoStatus ? kCloseNormal : in.code, "");
        return;
      case Inbound::Kind::kFail:
        reader_sound_ = false;
        if (!batch.empty()) {
          // The messages before the bad frame are handled first (see message_done).
          held_failure_ = std::move(in);
          return deliver(std::move(batch));
        }
        fail(in.code, in.error);
        return;
    }
  }
}

// After our close frame, the peer's answering close ends the connection (RFC 6455 7.1.1: the
// server closes TCP first). Anything else is ignored; after a protocol error, or on a plain
// HTTP connection, the bytes cannot be parsed and are discarded until EOF.
void WsConnection::drain_closing() {
  if (!websocket_ || !reader_sound_ || peer_closed_) {
    begin_ = end_ = 0;
    read_more();
    return;
  }
  for (;;) {
    std::size_t consumed = 0;
    Inbound in = reader_.next(buffer_.data() + begin_, end_ - begin_, consumed);
    begin_ += consumed;
    if (in.kind == Inbound::Kind::kNeedMore) {
      read_more();
      return;
    }
    if (in.kind == Inbound::Kind::kClose || in.kind == Inbound::Kind::kFail) {
      peer_closed_ = true;
      if (out_idle()) finish();  // else once our close is out
      return;
    }
  }
}

bool WsConnection::handle_here(const std::string& text) {
  try {
    return session_->try_on_message(text);
  } catch (...) {
    // A throwing session is the host's bug; the connection carries on, as in deliver().
    return true;
  }
}

// Reads stay paused until on_message() has returned for every message of the batch, so a session
// sees its messages one at a time and a client that outruns back-pressure simply stops being read.
void WsConnection::deliver(std::vector<std::string> batch) {
  in_flight_ = true;
  // The answers to new messages are a new burst: they need not refer back to earlier replies.
  if (held_deflater_used()) release_idle_deflater(true);
  context_->messages.post(
      [self = shared_from_this(), session = session_, batch = std::move(batch)] {
        for (const std::string& text : batch) {
          try {
            session->on_message(text);
          } catch (...) {
            // A throwing session is the host's bug; the connection carries on.
          }
        }
        asio::post(self->strand_, [self] { self->message_done(); });
      });
}

void WsConnection::message_done() {
  in_flight_ = false;
  if (state_ == State::kClosed) {
    hand_over_close();  // on_close() was held back until on_message() returned
    return;
  }
  if (state_ != State::kOpen) return;
  last_rx_ = std::chrono::steady_clock::now();  // back-pressure is not idleness
  ping_sent_ = false;
  process_frames();
}

void WsConnection::arm_idle_timer(std::chrono::steady_clock::time_point at) {
  idle_timer_.expires_at(at);
  idle_timer_.async_wait(
      [self = shared_from_this()](const asio::error_code& ec) { self->on_idle_timer(ec); });
}

// Fires at the next deadline: half the timeout since the last read (ping) or the full timeout
// (close). Only this handler re-arms the timer, so no stale wake-up can confuse it.
void WsConnection::on_idle_timer(const asio::error_code& ec) {
  if (ec || (state_ != State::kHttp && state_ != State::kOpen)) return;
  const auto timeout =
      std::chrono::milliseconds(std::chrono::seconds(context_->options.idle_timeout_seconds));
  const auto half = timeout / 2;
  const auto now = std::chrono::steady_clock::now();
  if (in_flight_) {
    arm_idle_timer(now + timeout);  // blocked on back-pressure; the client is not idle
    return;
  }
  if (now - last_rx_ >= timeout) {
    bump(context_->counters.idle_closes);
    if (state_ == State::kHttp) {
      finish();
    } else {
      start_close(kCloseGoingAway, "idle timeout");
    }
    return;
  }
  if (state_ == State::kOpen && now - last_rx_ >= half && !ping_sent_) {
    ping_sent_ = true;
    enqueue_control(Opcode::kPing, {});
  }
  arm_idle_timer(now - last_rx_ >= half ? last_rx_ + timeout : last_rx_ + half);
}

}  // namespace relaycore::websocket::detail
