// One accepted TCP connection: the HTTP request head, then (after an upgrade) WebSocket frames
// in both directions. Reading, timers and closing run on the connection's strand. Writing does
// not: a reply (any frame without an event: OK, EOSE, CLOSED, NOTICE...) is written at once by
// the thread that sends it, with one non-blocking gather write of everything queued, so it
// never waits behind other connections' fan-out. EVENT frames are queued and one flush per
// connection is handed to the server's writer threads, which gather all that has queued by
// then into one write. Only a connection whose socket is full hands its queue to the strand,
// which writes the rest when the socket becomes writable.
#pragma once

#include "websocket/asio_include.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "relaycore/connection.hpp"
#include "websocket/deflate.hpp"
#include "websocket/frame_codec.hpp"
#include "websocket/http.hpp"
#include "websocket/server_context.hpp"

namespace relaycore::websocket::detail {

using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = asio::ip::tcp::socket::rebind_executor<Strand>::other;
using Timer = asio::steady_timer::rebind_executor<Strand>::other;

// Timer::cancel() has no error_code overload (it cannot fail in practice); never let it throw.
inline void cancel_timer(Timer& timer) noexcept {
  try {
    timer.cancel();
  } catch (...) {
  }
}

// How long a closing connection waits for its close frame to go out and the peer to hang up
// before the socket is simply closed.
constexpr std::chrono::milliseconds kCloseTimeout{2000};

class WsConnection final : public Connection, public std::enable_shared_from_this<WsConnection> {
 public:
  WsConnection(std::shared_ptr<ServerContext> context, Socket socket);
  ~WsConnection() override;

  // Starts reading the request head. Call once, after ServerContext::add().
  void start();

  // Connection, for the session: any thread, never blocks.
  void send(Frame frame) override;
  void send_batch(std::span<Frame> frames) override;
  void close(std::string_view reason) override;
  std::size_t queued_bytes() const override;

  // Server::stop(): a close handshake with 1001, or (after the grace period) a hard close.
  void going_away();
  void abort();

 private:
  enum class State : std::uint8_t {
    kHttp,     // reading the request head
    kOpen,     // WebSocket open
    kClosing,  // last bytes (close frame or HTTP response) queued; draining until the peer goes
    kClosed,   // socket closed
  };

  // One queued write: a frame header (empty for raw HTTP bytes) and the payload in Frame's parts.
  struct OutItem {
    FrameHeader header;
    Frame payload;
    std::size_t counted = 0;  // bytes of this item in queued_
    bool last = false;        // a close frame or HTTP response: shut down after it
  };

  // What one write_out_locked() did, acted on once out_mu_ is released.
  struct WriteOutcome {
    std::size_t bytes = 0;          // counted bytes of the items written out
    bool last = false;              // the last item went out
    bool blocked = false;           // the socket is full: wait for it to become writable
    bool failed = false;            // the socket failed: close the connection
    bool release_deflater = false;  // the queue is written and a compressor is held
  };

  // Reading (connection.cpp).
  void read_more();
  void on_read(const asio::error_code& ec, std::size_t n);
  void process_http();
  void handle_upgrade(const ParsedRequest& parsed);
  void handle_plain_http(const HttpRequest& request);
  void reject_http(const HttpError& error, bool oversize);
  void process_frames();
  void drain_closing();
  // Session::try_on_message() on this I/O thread; true when the message needs nothing more.
  bool handle_here(const std::string& text);
  void deliver(std::vector<std::string> batch);
  void message_done();
  void arm_idle_timer(std::chrono::steady_clock::time_point at);
  void on_idle_timer(const asio::error_code& ec);

  // Writing and closing (connection_write.cpp).
  // Queues `frames` (`counted` bytes, already in queued_) as text frames and writes them now
  // unless the socket is full; any thread.
  void push_text(std::span<Frame> frames, std::size_t counted);
  // Queues one item and writes it now unless the socket is full; strand only. A `pong` still
  // queued is replaced by the next one.
  void push(OutItem item, bool pong = false);
  void enqueue_control(Opcode opcode, std::string payload);
  // The payload of a compressed message carrying `frame`: with the held compressor in a burst,
  // else from a fresh state (shared per EVENT). Called with out_mu_ held.
  std::string compress_locked(const Frame& frame);
  // Gives the held compressor back once nothing waits to be written and kDeflateQuiet passed
  // without it compressing; strand only.
  // `now`: at once if nothing waits to be written, as a client's new message begins a new burst.
  void release_idle_deflater(bool now = false);
  bool held_deflater_used();
  void arm_deflate_timer();
  // The one place frames reach the socket: a gather write of everything queued, as far as the
  // socket takes it. Called with out_mu_ held and no write pending.
  WriteOutcome write_out_locked();
  // Acts on a write's outcome with out_mu_ released; `on_strand` when called from the strand.
  void after_write(const WriteOutcome& outcome, bool on_strand);
  // Writes what has queued, on a writer thread.
  friend class WriterPool;
  void flush_queued();
  void wait_writable();
  void on_writable(const asio::error_code& ec);
  void after_last();
  // True when nothing is queued or waiting to be written.
  bool out_idle();
  // Queues `last_item` (a close frame or an HTTP response) as the final write; once it is out
  // the connection half-closes and drains (see on_written), all within kCloseTimeout.
  void begin_closing(OutItem last_item);
  void start_close(std::uint16_t code, std::string_view reason);
  void fail(std::uint16_t code, std::string_view reason);
  void finish();
  void hand_over_close();

  // Declared first so it is destroyed last: the socket and timers need its io_context.
  std::shared_ptr<ServerContext> context_;
  Socket socket_;
  Strand strand_;
  Timer idle_timer_;
  Timer close_timer_;
  Timer deflate_timer_;  // gives the burst compressor back after a quiet spell
  std::string remote_;

  // Strand-only state.
  State state_ = State::kHttp;
  std::vector<std::uint8_t> buffer_;
  std::size_t begin_ = 0, end_ = 0;
  bool reading_ = false;   // a read or a wait for readability is pending
  bool readable_ = false;  // that wait completed: bytes are there to read
  FrameReader reader_;
  std::shared_ptr<Session> session_;
  bool websocket_ = false;  // the handshake completed
  // permessage-deflate was agreed; set before the session exists, read-only afterwards.
  std::optional<DeflateParams> deflate_;
  bool reader_sound_ = true;  // reader_ has not failed, so later bytes can still be parsed
  bool peer_closed_ = false;  // the peer's close frame has arrived
  bool in_flight_ = false;    // a batch of on_message() calls is running; reads are paused
  // A protocol error found after a batch's messages; acted on once they have been handled.
  std::optional<Inbound> held_failure_;
  bool close_handed_ = false;  // on_close() has been scheduled
  std::chrono::steady_clock::time_point last_rx_;
  bool ping_sent_ = false;

  // The outbound queue, shared by every thread that sends. The socket is written only under
  // out_mu_, so writes never interleave and the descriptor is never closed under a writer.
  std::mutex out_mu_;
  const int fd_;
  std::vector<OutItem> out_;  // out_[out_head_..] wait to be written, in order
  std::size_t out_head_ = 0;
  std::size_t out_offset_ = 0;     // bytes of out_[out_head_] already written
  std::size_t pong_at_ = kNoPong;  // index in out_ of a pong not yet started
  bool out_waiting_ = false;       // the strand waits for the socket to become writable
  bool out_scheduled_ = false;     // the connection is on the writer threads' list
  bool out_last_ = false;          // the last item is queued: nothing more is taken
  bool out_open_ = true;           // false once the socket is closed
  // Bytes of out_ counted in the writer threads' backlog: fan-out queued while the socket had
  // room, not yet written. Zero after every write attempt (all written, or the socket is full
  // and the rest is the reader's).
  std::size_t pooled_ = 0;
  // The compressor held while writes are backed up, so a burst's messages refer to each other;
  // back to the pool once the queue is written (see deflate.hpp).
  Deflate::Held held_deflater_;
  bool deflate_recent_ = false;  // held_deflater_ compressed since release_idle_deflater last ran
  bool release_posted_ = false;  // deflate_timer_ is armed for release_idle_deflater
  static constexpr std::size_t kNoPong = static_cast<std::size_t>(-1);

  // Any-thread state.
  std::atomic<std::size_t> queued_{0};
  std::atomic<bool> accepting_{true};  // false once closing: send() drops frames
  std::atomic<bool> overflowed_{false};
};

}  // namespace relaycore::websocket::detail
