#include "ws_client.hpp"

#include <openssl/evp.h>

#include <array>
#include <random>

namespace example {

using relaycore::Result;
using relaycore::Status;

namespace {

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// The Sec-WebSocket-Accept a server must answer `key` with: base64(SHA-1(key + GUID)).
std::string accept_for(const std::string& key) {
  const std::string text = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha1(), nullptr);
  return base64(digest, size);
}

template <std::size_t N>
std::array<unsigned char, N> random_bytes() {
  static thread_local std::random_device device;
  std::array<unsigned char, N> out{};
  for (unsigned char& b : out) b = static_cast<unsigned char>(device());
  return out;
}

}  // namespace

Status WsClient::connect(const std::string& host, std::uint16_t port) {
  asio::error_code ec;
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address(host, ec), port);
  if (!ec) socket_.connect(endpoint, ec);
  if (ec) return Status::error("connect: " + ec.message());

  const auto nonce = random_bytes<16>();
  const std::string key = base64(nonce.data(), nonce.size());
  const std::string request = "GET / HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: " +
                              key + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  asio::write(socket_, asio::buffer(request), ec);
  if (ec) return Status::error("handshake: " + ec.message());

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (Status s = read_more(deadline); !s) return s;
  }
  std::string head = buffer_.substr(0, end + 2);
  buffer_.erase(0, end + 4);
  if (!head.starts_with("HTTP/1.1 101")) {
    return Status::error("handshake refused: " + head.substr(0, head.find('\r')));
  }
  // Header names are case-insensitive; servers send this one in several spellings.
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string expected = accept_for(key);
  for (char& c : expected) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head.find("\r\nsec-websocket-accept: " + expected + "\r\n") == std::string::npos) {
    return Status::error("handshake: wrong or missing Sec-WebSocket-Accept");
  }
  return Status::ok();
}

Status WsClient::send_text(std::string_view text) { return send_frame(0x1, text); }

Status WsClient::send_frame(std::uint8_t opcode, std::string_view payload) {
  std::string frame;
  frame.push_back(static_cast<char>(0x80 | opcode));  // FIN: never fragmented
  const std::uint64_t size = payload.size();
  if (size < 126) {
    frame.push_back(static_cast<char>(0x80 | size));  // 0x80: masked
  } else {
    const int bytes = size <= 0xffff ? 2 : 8;
    frame.push_back(static_cast<char>(0x80 | (bytes == 2 ? 126 : 127)));
    for (int i = bytes - 1; i >= 0; --i) frame.push_back(static_cast<char>(size >> (8 * i)));
  }
  const auto mask = random_bytes<4>();
  frame.append(reinterpret_cast<const char*>(mask.data()), mask.size());
  for (std::size_t i = 0; i < payload.size(); ++i) {
    frame.push_back(static_cast<char>(payload[i] ^ static_cast<char>(mask[i % 4])));
  }
  asio::error_code ec;
  asio::write(socket_, asio::buffer(frame), ec);
  return ec ? Status::error("send: " + ec.message()) : Status::ok();
}

Result<std::string> WsClient::receive_text(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string message;
  for (;;) {
    // A frame: FIN and opcode, then a 7-bit length (126: 16 bits follow, 127: 64 bits follow).
    // Servers do not mask, so the payload follows the length directly.
    auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(buffer_[i]); };
    std::size_t header = 2;
    std::uint64_t size = buffer_.size() >= 2 ? byte(1) & 0x7f : 0;
    if (size >= 126) header += size == 126 ? 2 : 8;
    if (buffer_.size() >= 2 && (byte(1) & 0x80) != 0) return Status::error("masked server frame");
    if (buffer_.size() < header) {
      if (Status s = read_more(deadline); !s) return s;
      continue;
    }
    if (header > 2) size = 0;
    for (std::size_t i = 2; i < header; ++i) size = (size << 8) | byte(i);
    if (buffer_.size() - header < size) {
      if (Status s = read_more(deadline); !s) return s;
      continue;
    }
    const bool fin = (byte(0) & 0x80) != 0;
    const std::uint8_t opcode = byte(0) & 0x0f;
    std::string payload = buffer_.substr(header, size);
    buffer_.erase(0, header + size);
    if (opcode == 0x8) return Status::error("the server closed the connection");
    if (opcode == 0x9) {
      if (Status s = send_frame(0xA, payload); !s) return s;  // pong
      continue;
    }
    if (opcode != 0x1 && opcode != 0x0) continue;  // pongs and binary frames
    message += payload;
    if (fin) return message;
  }
}

void WsClient::close() {
  if (!socket_.is_open()) return;
  if (send_frame(0x8, std::string_view("\x03\xe8", 2))) {  // 1000: normal closure
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (read_more(deadline)) {
    }
  }
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

// Blocking Asio reads have no timeout, so this runs one async read for at most the time left.
Status WsClient::read_more(std::chrono::steady_clock::time_point deadline) {
  std::array<char, 4096> chunk;
  asio::error_code result = asio::error::timed_out;
  std::size_t got = 0;
  bool done = false;
  socket_.async_read_some(asio::buffer(chunk), [&](asio::error_code ec, std::size_t n) {
    result = ec;
    got = n;
    done = true;
  });
  io_.restart();
  io_.run_until(deadline);
  if (!done) {
    socket_.cancel();
    io_.restart();
    io_.run();  // lets the cancelled read finish before `chunk` goes away
    return Status::error("timed out waiting for the server");
  }
  if (result) return Status::error("receive: " + result.message());
  buffer_.append(chunk.data(), got);
  return Status::ok();
}

}  // namespace example
