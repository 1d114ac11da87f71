#include "ws_peer.hpp"

#include <algorithm>
#include <cstring>

namespace relaycore::loadgen {
namespace {

using websocket::detail::Inbound;
using websocket::detail::Opcode;

constexpr std::size_t kMaxMessage = 16u << 20;

}  // namespace

// Whether the response head's Sec-WebSocket-Extensions names the extension offered first.
bool WsPeer::accepted_extension(std::string_view head) const {
  std::string lower(head);
  std::transform(lower.begin(), lower.end(), lower.begin(), ascii_lower);
  const std::string_view name =
      trim(std::string_view(extensions_).substr(0, extensions_.find_first_of(";,")));
  const std::size_t at = lower.find("\r\nsec-websocket-extensions:");
  if (at == std::string::npos) return false;
  const std::string_view line =
      std::string_view(lower).substr(at + 2, lower.find("\r\n", at + 2) - at - 2);
  return line.find(name) != std::string_view::npos;
}

WsPeer::WsPeer(asio::io_context& io, websocket::detail::WsUrl url, Callbacks callbacks,
               std::size_t read_chunk)
    : socket_(io),
      url_(std::move(url)),
      callbacks_(std::move(callbacks)),
      read_chunk_(read_chunk),
      reader_(kMaxMessage, websocket::detail::FramesFrom::kServer) {}

void WsPeer::start() {
  asio::error_code ec;
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address(url_.host, ec), url_.port);
  if (ec) return fail("the load tools want a numeric host: " + url_.host);
  socket_.async_connect(
      endpoint, [self = shared_from_this()](const asio::error_code& e) { self->on_connected(e); });
}

void WsPeer::on_connected(const asio::error_code& ec) {
  if (ec) return fail("connect: " + ec.message());
  asio::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  key_ = websocket::detail::new_client_key();
  pending_ = websocket::detail::render_upgrade_request(url_, key_, extensions_);
  write_next();
  read_more();
}

void WsPeer::send_text(std::string_view text) {
  if (failed_) return;
  websocket::detail::append_masked_frame(pending_, Opcode::kText, text,
                                         websocket::detail::new_mask());
  write_next();
}

void WsPeer::stop() {
  failed_ = true;
  asio::error_code ignored;
  socket_.close(ignored);
}

void WsPeer::write_next() {
  if (write_in_progress_ || pending_.empty() || failed_) return;
  writing_.swap(pending_);
  pending_.clear();
  write_in_progress_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                      self->write_in_progress_ = false;
                      if (ec) return self->fail("send: " + ec.message());
                      self->write_next();
                    });
}

void WsPeer::read_more() {
  if (failed_) return;
  if (rx_begin_ == rx_end_) rx_begin_ = rx_end_ = 0;
  if (rx_.size() - rx_end_ < read_chunk_ / 2) {
    std::memmove(rx_.data(), rx_.data() + rx_begin_, rx_end_ - rx_begin_);
    rx_end_ -= rx_begin_;
    rx_begin_ = 0;
    if (rx_.size() - rx_end_ < read_chunk_ / 2) rx_.resize(rx_end_ + read_chunk_);
  }
  socket_.async_read_some(asio::buffer(rx_.data() + rx_end_, rx_.size() - rx_end_),
                          [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
}

void WsPeer::on_read(const asio::error_code& ec, std::size_t n) {
  if (failed_) return;
  if (ec) return fail(ec == asio::error::eof ? "the server hung up" : "receive: " + ec.message());
  rx_end_ += n;
  parse();
  read_more();
}

void WsPeer::parse() {
  if (!open_) {
    const std::string_view have(reinterpret_cast<const char*>(rx_.data() + rx_begin_),
                                rx_end_ - rx_begin_);
    const std::size_t end = websocket::detail::find_head_end(have);
    if (end == std::string_view::npos) {
      if (have.size() > 16 * 1024) fail("handshake: response head too large");
      return;
    }
    Status checked = websocket::detail::check_upgrade_response(have.substr(0, end), key_);
    if (!checked) return fail(checked.message());
    if (!extensions_.empty() && !accepted_extension(have.substr(0, end))) {
      return fail("handshake: the server declined " + extensions_);
    }
    rx_begin_ += end;
    open_ = true;
    if (callbacks_.on_open) callbacks_.on_open(Status::ok());
  }
  while (!failed_) {
    std::size_t consumed = 0;
    Inbound in = reader_.next(rx_.data() + rx_begin_, rx_end_ - rx_begin_, consumed);
    rx_begin_ += consumed;
    switch (in.kind) {
      case Inbound::Kind::kNeedMore:
        return;
      case Inbound::Kind::kText:
        if (callbacks_.on_text) callbacks_.on_text(in.payload);
        break;
      case Inbound::Kind::kPing:
        websocket::detail::append_masked_frame(pending_, Opcode::kPong, in.payload,
                                               websocket::detail::new_mask());
        write_next();
        break;
      case Inbound::Kind::kPong:
        break;
      case Inbound::Kind::kClose:
        return fail("closed by the server: " + std::to_string(in.code) + " " + in.payload);
      case Inbound::Kind::kFail:
        return fail("protocol error: " + std::string(in.error));
    }
  }
}

void WsPeer::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  asio::error_code ignored;
  socket_.close(ignored);
  if (!open_ && callbacks_.on_open) {
    callbacks_.on_open(Status::error(why));
  } else if (callbacks_.on_error) {
    callbacks_.on_error(why);
  }
}

}  // namespace relaycore::loadgen
