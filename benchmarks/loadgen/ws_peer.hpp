// One asynchronous WebSocket client connection for the load tools, on an io_context run by one
// thread (so no strand is needed). It reuses relaycore's own codec: the upgrade request and its
// Sec-WebSocket-Accept check (websocket/http.hpp), masked frames out and the FrameReader in
// server-frame mode in (websocket/frame_codec.hpp). Pings are answered; frames sent while a
// write is in flight are batched into the next write.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "websocket/asio_include.hpp"
#include "websocket/frame_codec.hpp"
#include "websocket/http.hpp"

namespace relaycore::loadgen {

class WsPeer : public std::enable_shared_from_this<WsPeer> {
 public:
  // Called on the io thread: on_open once the handshake is done (or with an error), on_text for
  // every text message, on_error once when the connection fails or the server closes it.
  struct Callbacks {
    std::function<void(const Status&)> on_open;
    std::function<void(std::string_view)> on_text;
    std::function<void(const std::string&)> on_error;
  };

  // `read_chunk`: free buffer space per read; small for the thousands of idle connections of
  // the memory benchmark, large for throughput.
  WsPeer(asio::io_context& io, websocket::detail::WsUrl url, Callbacks callbacks,
         std::size_t read_chunk = 64 * 1024);

  // Offers `extensions` (a Sec-WebSocket-Extensions value) in the handshake, which then fails
  // unless the server accepts them. For idle connections only: this peer cannot read what the
  // extensions would change. Call before start().
  void offer_extensions(std::string extensions) { extensions_ = std::move(extensions); }
  // Connects and sends the upgrade request. Call once.
  void start();
  // Queues one text frame (io thread only).
  void send_text(std::string_view text);
  // Closes the socket without a close handshake.
  void stop();
  bool open() const { return open_; }

 private:
  void on_connected(const asio::error_code& ec);
  void read_more();
  void on_read(const asio::error_code& ec, std::size_t n);
  void parse();
  void write_next();
  void fail(const std::string& why);
  bool accepted_extension(std::string_view head) const;

  asio::ip::tcp::socket socket_;
  websocket::detail::WsUrl url_;
  Callbacks callbacks_;
  std::size_t read_chunk_;
  std::string key_;
  std::string extensions_;
  websocket::detail::FrameReader reader_;
  std::vector<std::uint8_t> rx_;
  std::size_t rx_begin_ = 0, rx_end_ = 0;
  std::string pending_;  // frames queued while a write is in flight
  std::string writing_;
  bool write_in_progress_ = false;
  bool open_ = false;
  bool failed_ = false;
};

// One io_context per thread, each run by its own thread until stop(): connections are spread
// over them with next(), so each connection's handlers run on one thread.
class IoThreads {
 public:
  explicit IoThreads(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      ios_.push_back(std::make_unique<asio::io_context>(1));
      guards_.push_back(asio::make_work_guard(*ios_.back()));
    }
    for (auto& io : ios_) threads_.emplace_back([&io] { io->run(); });
  }
  ~IoThreads() { stop(); }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  // The contexts in turn.
  asio::io_context& next() { return *ios_[next_++ % ios_.size()]; }

  // Stops the contexts (pending handlers are dropped with them) and joins the threads.
  void stop() {
    for (auto& io : ios_) io->stop();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::size_t next_ = 0;
};

}  // namespace relaycore::loadgen
