// The blocking client behind include/relaycore/websocket/client.hpp. Blocking Asio calls have no
// deadline, so every wait runs one async operation on a private io_context until it completes or
// the time is up.
#include "relaycore/websocket/client.hpp"

#include <array>
#include <cctype>
#include <cstdlib>
#include <utility>
#include <vector>

#include "websocket/asio_include.hpp"
#include "websocket/frame_codec.hpp"
#include "websocket/http.hpp"

namespace relaycore::websocket {
namespace {

using detail::FrameReader;
using detail::Inbound;
using detail::Opcode;
using Clock = std::chrono::steady_clock;

// The largest response head accepted from a server.
constexpr std::size_t kMaxResponseHead = 16 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(const ClientOptions& options)
      : headers_(options.headers),
        reader_(options.max_message_bytes, detail::FramesFrom::kServer) {}
  ~ClientImpl() override { shutdown(); }

  Status open(const detail::WsUrl& url, Clock::time_point deadline) {
    if (Status s = connect_socket(url, deadline); !s) return s;
    const std::string key = detail::new_client_key();
    if (Status s = write(detail::render_upgrade_request(url, key, {}, headers_)); !s) return s;
    std::size_t end = std::string_view::npos;
    while ((end = detail::find_head_end(view())) == std::string_view::npos) {
      if (rx_.size() > kMaxResponseHead) return fail("handshake: response head too large");
      if (Status s = read_more(deadline); !s) return s;
    }
    Status checked = detail::check_upgrade_response(view().substr(0, end), key);
    if (!checked) return fail(checked.message());
    rx_.erase(rx_.begin(), rx_.begin() + static_cast<std::ptrdiff_t>(end));
    return Status::ok();
  }

  // A plain HTTP GET of the URL's path: the body of a 200 answer, read up to Content-Length or
  // to the end of the stream, at most `max_bytes`.
  Result<std::string> get(const detail::WsUrl& url, std::string_view accept, std::size_t max_bytes,
                          Clock::time_point deadline) {
    if (Status s = connect_socket(url, deadline); !s) return s;
    const bool v6 = url.host.find(':') != std::string::npos;
    std::string request = "GET " + url.path + " HTTP/1.1\r\nHost: ";
    request.append(v6 ? "[" + url.host + "]" : url.host).append(":");
    request.append(std::to_string(url.port)).append("\r\nAccept: ").append(accept);
    request.append("\r\nConnection: close\r\n\r\n");
    if (Status s = write(request); !s) return s;
    std::size_t end = std::string_view::npos;
    std::size_t length = std::string_view::npos;
    for (;;) {
      if (end == std::string_view::npos &&
          (end = detail::find_head_end(view())) != std::string_view::npos) {
        const std::string_view head = view().substr(0, end);
        if (head.substr(0, 9) != "HTTP/1.1 " && head.substr(0, 9) != "HTTP/1.0 ") {
          return fail("not an HTTP response");
        }
        if (head.substr(9, 3) != "200") {
          return fail("HTTP " + std::string(head.substr(9, head.find('\r') - 9)));
        }
        std::string lower(head);
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (const std::size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
          length = std::strtoull(lower.c_str() + at + 17, nullptr, 10);
        }
      }
      if (end != std::string_view::npos && length != std::string_view::npos &&
          rx_.size() - end >= length) {
        break;
      }
      if (rx_.size() > max_bytes + kMaxResponseHead) return fail("HTTP response too large");
      if (Status s = read_more(deadline); !s) {
        // Without a Content-Length the body ends with the stream.
        if (broken_ && end != std::string_view::npos && length == std::string_view::npos) break;
        return s;
      }
    }
    std::string body(view().substr(end, length));
    shutdown();
    return body;
  }

  Status send_text(std::string_view text) override { return send(Opcode::kText, text); }

  Status ping(std::string_view payload) override {
    if (payload.size() > detail::kMaxControlPayload) return Status::invalid("ping over 125 bytes");
    return send(Opcode::kPing, payload);
  }

  Result<std::string> receive_text(std::chrono::milliseconds timeout) override {
    const Clock::time_point deadline = Clock::now() + timeout;
    for (;;) {
      if (broken_) return Status::error("connection closed");
      std::size_t consumed = 0;
      Inbound in = reader_.next(rx_.data(), rx_.size(), consumed);
      rx_.erase(rx_.begin(), rx_.begin() + static_cast<std::ptrdiff_t>(consumed));
      switch (in.kind) {
        case Inbound::Kind::kText:
          return std::move(in.payload);
        case Inbound::Kind::kPing:
          if (Status s = send(Opcode::kPong, in.payload); !s) return s;
          continue;
        case Inbound::Kind::kPong:
          continue;
        case Inbound::Kind::kClose: {
          // Echo the code, as RFC 6455 5.5.1 asks, then the server closes TCP.
          const std::uint16_t code =
              in.code == detail::kCloseNoStatus ? detail::kCloseNormal : in.code;
          static_cast<void>(send(Opcode::kClose, detail::close_payload(code, "")));
          shutdown();
          return Status::error("closed by the server: " + std::to_string(in.code) + " " +
                               in.payload);
        }
        case Inbound::Kind::kFail:
          static_cast<void>(send(Opcode::kClose, detail::close_payload(in.code, in.error)));
          return fail("protocol error from the server: " + std::string(in.error));
        case Inbound::Kind::kNeedMore:
          break;
      }
      if (Status s = read_more(deadline); !s) return s;
    }
  }

  void close(std::uint16_t code, std::chrono::milliseconds timeout) override {
    if (broken_) return shutdown();
    if (send(Opcode::kClose, detail::close_payload(code, ""))) {
      // Everything until the server's close frame or end of stream is dropped.
      const Clock::time_point deadline = Clock::now() + timeout;
      for (;;) {
        std::size_t consumed = 0;
        Inbound in = reader_.next(rx_.data(), rx_.size(), consumed);
        rx_.erase(rx_.begin(), rx_.begin() + static_cast<std::ptrdiff_t>(consumed));
        if (in.kind == Inbound::Kind::kClose || in.kind == Inbound::Kind::kFail) break;
        if (in.kind == Inbound::Kind::kNeedMore && !read_more(deadline)) break;
      }
    }
    shutdown();
  }

 private:
  // Resolves and connects the TCP socket before `deadline`.
  Status connect_socket(const detail::WsUrl& url, Clock::time_point deadline) {
    asio::error_code ec;
    asio::ip::tcp::resolver resolver(io_);
    const auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
    if (ec) return Status::error("resolve " + url.host + ": " + ec.message());
    ec = asio::error::timed_out;
    asio::async_connect(socket_, endpoints,
                        [&](const asio::error_code& e, const asio::ip::tcp::endpoint&) { ec = e; });
    if (!run_until(deadline) || ec) {
      shutdown();
      return Status::error("connect " + url.host + ": " + ec.message());
    }
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    return Status::ok();
  }

  std::string_view view() const { return {reinterpret_cast<const char*>(rx_.data()), rx_.size()}; }

  // Runs io_ until the pending operation completes (true) or `deadline` passes (false; the
  // operation is cancelled and has finished when this returns).
  bool run_until(Clock::time_point deadline) {
    io_.restart();
    io_.run_until(deadline);
    if (io_.stopped()) return true;
    asio::error_code ignored;
    socket_.cancel(ignored);
    io_.restart();
    io_.run();
    return false;
  }

  Status fail(std::string message) {
    shutdown();
    return Status::error(message);
  }

  void shutdown() {
    broken_ = true;
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  Status send(Opcode opcode, std::string_view payload) {
    if (broken_) return Status::error("connection closed");
    tx_.clear();
    detail::append_masked_frame(tx_, opcode, payload, detail::new_mask());
    return write(tx_);
  }

  Status write(std::string_view bytes) {
    asio::error_code ec;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec) return fail("send: " + ec.message());
    return Status::ok();
  }

  // Appends what arrives before `deadline` to rx_. A timeout leaves the connection usable.
  Status read_more(Clock::time_point deadline) {
    if (broken_) return Status::error("connection closed");
    std::array<std::uint8_t, kReadChunk> chunk;
    asio::error_code ec = asio::error::timed_out;
    std::size_t got = 0;
    socket_.async_read_some(asio::buffer(chunk), [&](const asio::error_code& e, std::size_t n) {
      ec = e;
      got = n;
    });
    const bool done = run_until(deadline);
    // A read cancelled at the deadline may still have completed with bytes; keep them.
    if (got > 0) {
      rx_.insert(rx_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
      return Status::ok();
    }
    if (!done) return Status::error("timed out waiting for the server");
    if (ec == asio::error::eof) return fail("the server closed the connection");
    return fail("receive: " + ec.message());
  }

  asio::io_context io_;
  asio::ip::tcp::socket socket_{io_};
  const detail::HeaderFields headers_;  // sent with the upgrade request
  FrameReader reader_;
  std::vector<std::uint8_t> rx_;  // received bytes not yet parsed
  std::string tx_;                // the frame being written
  bool broken_ = false;           // closed, failed or closed by the server
};

}  // namespace

Result<std::unique_ptr<Client>> Client::connect(std::string_view url,
                                                const ClientOptions& options) {
  Result<detail::WsUrl> parsed = detail::parse_ws_url(url);
  if (!parsed) return parsed.error();
  if (Status s = detail::check_extra_headers(options.headers); !s) return s;
  try {
    auto client = std::make_unique<ClientImpl>(options);
    if (Status s = client->open(parsed.value(), Clock::now() + options.connect_timeout); !s) {
      return s;
    }
    return std::unique_ptr<Client>(std::move(client));
  } catch (const std::exception& e) {
    return Status::error(std::string("connect: ") + e.what());
  }
}

Result<std::string> fetch_relay_information(std::string_view url, const ClientOptions& options) {
  Result<detail::WsUrl> parsed = detail::parse_ws_url(url);
  if (!parsed) return parsed.error();
  try {
    ClientImpl client(options);
    return client.get(parsed.value(), "application/nostr+json", options.max_message_bytes,
                      Clock::now() + options.connect_timeout);
  } catch (const std::exception& e) {
    return Status::error(std::string("fetch: ") + e.what());
  }
}

}  // namespace relaycore::websocket
