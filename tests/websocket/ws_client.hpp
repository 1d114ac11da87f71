// A raw WebSocket test client on a blocking Asio socket, for the rules a well-behaved client
// (relaycore::websocket::Client, tested in test_client.cpp) never breaks. It sends arbitrary bytes
// and frames (masked or not, any flags, any announced length) and parses server frames strictly, so
// the tests can exercise every protocol rule the server enforces. Reads wait with poll() and a
// timeout, so a server that fails to answer fails the test instead of hanging it.
#pragma once

#include <poll.h>

// GCC 12 at -O2 reports a false -Wnull-dereference inside Asio's scheduler (see
// src/websocket/asio_include.hpp); silence it for Asio's lines only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <asio.hpp>
#pragma GCC diagnostic pop

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "websocket/frame_codec.hpp"

namespace relaycore::websocket::test {

using namespace std::chrono_literals;

// The opcodes as raw bytes, from the codec the server uses (this client also sends bad ones).
constexpr std::uint8_t op(detail::Opcode opcode) { return static_cast<std::uint8_t>(opcode); }
constexpr std::uint8_t kOpContinuation = op(detail::Opcode::kContinuation);
constexpr std::uint8_t kOpText = op(detail::Opcode::kText);
constexpr std::uint8_t kOpBinary = op(detail::Opcode::kBinary);
constexpr std::uint8_t kOpClose = op(detail::Opcode::kClose);
constexpr std::uint8_t kOpPing = op(detail::Opcode::kPing);
constexpr std::uint8_t kOpPong = op(detail::Opcode::kPong);

constexpr std::string_view kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
// RFC 6455 section 1.3: base64(SHA-1(key + GUID)) for the example key.
constexpr std::string_view kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// A frame as the server sent it. `header_size` shows which length encoding was used.
struct ServerFrame {
  bool fin = false;
  std::uint8_t rsv = 0;
  std::uint8_t opcode = 0;
  bool masked = false;
  std::size_t header_size = 0;
  std::string payload;

  // The status code of a close frame (1005 when it had none).
  std::uint16_t close_code() const {
    if (payload.size() < 2) return 1005;
    return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                      static_cast<unsigned char>(payload[1]));
  }
};

struct HttpReply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

struct FrameOptions {
  bool fin = true;
  bool masked = true;
  std::uint8_t rsv = 0;  // the three RSV bits, 0..7
  // Announce this length instead of the payload's (the payload is sent as it is).
  std::optional<std::uint64_t> announced;
  // Force the 64-bit length encoding.
  bool long_length = false;
};

class WsClient {
 public:
  explicit WsClient(std::uint16_t port) : socket_(io_) {
    asio::error_code ec;
    socket_.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    connected_ = !ec;
  }
  ~WsClient() { close(); }

  bool connected() const { return connected_; }

  void close() {
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  std::uint16_t local_port() const {
    asio::error_code ec;
    return socket_.local_endpoint(ec).port();
  }

  bool send_raw(std::string_view bytes) {
    asio::error_code ec;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  static std::string upgrade_request(std::string_view key = kRfcKey,
                                     std::string_view extra_headers = "") {
    std::string r = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n";
    r += "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    r += "Sec-WebSocket-Key: " + std::string(key) + "\r\n";
    r += extra_headers;
    r += "\r\n";
    return r;
  }

  // Sends the upgrade request and reads the response head. True on 101.
  bool handshake(std::string_view key = kRfcKey, std::string_view extra_headers = "") {
    if (!send_raw(upgrade_request(key, extra_headers))) return false;
    std::optional<std::string> head = read_head();
    if (!head) return false;
    last_head_ = *head;
    return head->rfind("HTTP/1.1 101 ", 0) == 0;
  }
  const std::string& last_head() const { return last_head_; }

  // Reads a response head (through "\r\n\r\n"); whatever follows stays buffered.
  std::optional<std::string> read_head(std::chrono::milliseconds timeout = 5000ms) {
    for (;;) {
      const std::size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = buffer_.substr(0, end + 4);
        buffer_.erase(0, end + 4);
        return head;
      }
      if (!fill(timeout)) return std::nullopt;
    }
  }

  // Reads a whole HTTP response; the server closes after it, so the body runs to EOF.
  std::optional<HttpReply> read_http(std::chrono::milliseconds timeout = 5000ms) {
    std::optional<std::string> head = read_head(timeout);
    if (!head || head->size() < 12) return std::nullopt;
    HttpReply reply;
    reply.head = *head;
    reply.status = std::stoi(head->substr(9, 3));
    while (fill(timeout)) {
    }
    reply.body = std::move(buffer_);
    buffer_.clear();
    return reply;
  }

  static std::string frame_bytes(std::uint8_t opcode, std::string_view payload,
                                 const FrameOptions& o = {}) {
    std::string f;
    f.push_back(static_cast<char>((o.fin ? 0x80 : 0) | ((o.rsv & 7) << 4) | (opcode & 0x0F)));
    const std::uint64_t n = o.announced.value_or(payload.size());
    const char mask_bit = o.masked ? static_cast<char>(0x80) : 0;
    if (n < 126 && !o.long_length) {
      f.push_back(static_cast<char>(mask_bit | static_cast<char>(n)));
    } else if (n <= 0xFFFF && !o.long_length) {
      f.push_back(static_cast<char>(mask_bit | 126));
      f.push_back(static_cast<char>(n >> 8));
      f.push_back(static_cast<char>(n & 0xFF));
    } else {
      f.push_back(static_cast<char>(mask_bit | 127));
      for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
    }
    static thread_local std::mt19937 rng(12345);
    std::array<char, 4> key{};
    for (char& k : key) k = static_cast<char>(rng() & 0xFF);
    if (o.masked) f.append(key.data(), 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
      f.push_back(o.masked ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i]);
    }
    return f;
  }

  bool send_frame(std::uint8_t opcode, std::string_view payload, const FrameOptions& o = {}) {
    return send_raw(frame_bytes(opcode, payload, o));
  }
  bool send_text(std::string_view text) { return send_frame(kOpText, text); }
  bool send_close(std::uint16_t code, std::string_view reason = "") {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return send_frame(kOpClose, p);
  }

  // The next server frame, or nullopt on timeout or EOF.
  std::optional<ServerFrame> read_frame(std::chrono::milliseconds timeout = 5000ms) {
    ServerFrame f;
    for (;;) {
      if (buffer_.size() >= 2) {
        const auto b0 = static_cast<unsigned char>(buffer_[0]);
        const auto b1 = static_cast<unsigned char>(buffer_[1]);
        const std::size_t len7 = b1 & 0x7F;
        const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        const std::size_t mask = (b1 & 0x80) ? 4 : 0;
        if (buffer_.size() >= 2 + ext + mask) {
          std::uint64_t n = len7;
          if (ext > 0) {
            n = 0;
            for (std::size_t i = 0; i < ext; ++i) {
              n = (n << 8) | static_cast<unsigned char>(buffer_[2 + i]);
            }
          }
          const std::size_t header = 2 + ext + mask;
          if (buffer_.size() >= header + n) {
            f.fin = (b0 & 0x80) != 0;
            f.rsv = static_cast<std::uint8_t>((b0 >> 4) & 7);
            f.opcode = b0 & 0x0F;
            f.masked = mask != 0;
            f.header_size = header;
            f.payload = buffer_.substr(header, n);
            buffer_.erase(0, header + n);
            return f;
          }
        }
      }
      if (!fill(timeout)) return std::nullopt;
    }
  }

  // Skips pings and pongs. Returns the next data or close frame.
  std::optional<ServerFrame> read_data_or_close(std::chrono::milliseconds timeout = 5000ms) {
    for (;;) {
      std::optional<ServerFrame> f = read_frame(timeout);
      if (!f || (f->opcode != kOpPing && f->opcode != kOpPong)) return f;
    }
  }

  // The code of the close frame the server sends next (skipping other frames), or 0.
  std::uint16_t read_close_code(std::chrono::milliseconds timeout = 5000ms) {
    for (;;) {
      std::optional<ServerFrame> f = read_frame(timeout);
      if (!f) return 0;
      if (f->opcode == kOpClose) return f->close_code();
    }
  }

  // True when the server closes the connection (EOF or reset) within `timeout`; buffered and
  // further bytes are discarded.
  bool wait_closed(std::chrono::milliseconds timeout = 5000ms) {
    buffer_.clear();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (!fill(left)) return eof_;
      buffer_.clear();
    }
  }

  bool eof() const { return eof_; }

 private:
  // Reads whatever arrives within `timeout` into buffer_; false on timeout, EOF or error.
  bool fill(std::chrono::milliseconds timeout) {
    if (eof_) return false;
    pollfd pfd{socket_.native_handle(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
    std::array<char, 65536> chunk{};
    asio::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(chunk), ec);
    if (ec) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk.data(), n);
    return true;
  }

  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
  std::string last_head_;
};

}  // namespace relaycore::websocket::test
