// Connection and Session: the seam between a host's transport and relaycore. The host
// implements Connection (send, close, queued bytes) and describes the client in a ClientInfo;
// relaycore implements Session, which the host feeds with the text frames it receives.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"

namespace relaycore {

// One outgoing text frame. An EVENT frame is a short head (["EVENT","<sub id>",), the event's
// shared canonical JSON and a closing bracket, so fan-out to many subscribers never copies or
// re-serialises the event. A transport writes parts() in order (scatter/gather) or to_string().
class RELAYCORE_API Frame {
 public:
  Frame() = default;
  explicit Frame(std::string text) : head_(std::move(text)) {}
  Frame(std::string head, EventPtr event) : head_(std::move(head)), event_(std::move(event)) {}

  std::array<std::string_view, 3> parts() const noexcept {
    if (!event_) return {head_, {}, {}};
    return {head_, event_->json(), "]"};
  }
  // The event of an EVENT frame; null for other frames.
  const EventPtr& event() const noexcept { return event_; }
  std::size_t size() const noexcept {
    return event_ ? head_.size() + event_->json().size() + 1 : head_.size();
  }
  std::string to_string() const {
    std::string out;
    out.reserve(size());
    for (std::string_view p : parts()) out.append(p);
    return out;
  }

 private:
  std::string head_;
  EventPtr event_;
};

// Who is asking: what the host told relaycore about the connection, and what NIP-42 proved.
struct ClientInfo {
  // The peer's address as the host knows it ("" for Relay::submit).
  std::string remote_address;
  // Pubkeys the client has authenticated as (NIP-42).
  std::vector<Pubkey> authenticated;
  // The addresses a reverse proxy says the request came through, as its forwarding header
  // gives them ("203.0.113.7, 10.0.0.2": the client first, the nearest hop last), or "".
  // relaycore believes it only when remote_address is one of RateLimits::trusted_proxies.
  // (A default member initializer, so that `ClientInfo{address, {}}` stays warning-free.)
  std::string forwarded_for = {};
};

// Implemented by the host, one per client connection.
// [Threading] send(), send_batch() and close() are called from relaycore threads, never
//   concurrently with each other for the same connection, and frames arrive in the order the
//   session produced them. queued_bytes() may be called from any thread at any time.
// [Blocking] send() must not block: queue the frame (or write it without waiting) and return.
// close() must not block either. [Ownership] The frame is the connection's after send(). [Errors] A
// connection that has failed drops frames silently; relaycore learns of the end
//   through Session::on_close().
class RELAYCORE_API Connection {
 public:
  virtual ~Connection() = default;
  virtual void send(Frame frame) = 0;
  // Sends `frames` in order, exactly as send() on each would; a transport may write them out
  // together (one system call for the lot). The frames are the connection's afterwards.
  virtual void send_batch(std::span<Frame> frames) {
    for (Frame& frame : frames) send(std::move(frame));
  }
  // Closes the connection; `reason` is for logs and close frames.
  virtual void close(std::string_view reason) = 0;
  // Bytes handed to send() that the peer has not yet taken.
  virtual std::size_t queued_bytes() const = 0;
};

// Implemented by relaycore; the host gets one from Relay::open_session().
// [Threading] on_message() and try_on_message() may be called from any thread, but not
//   concurrently for the same session: frames from one client are handled in the order given.
// [Blocking] on_message() blocks while the ingest queue is full (back-pressure), so a reader
//   thread stops reading a client that outruns the relay. try_on_message() never waits.
// [Ownership] The frame is copied or consumed before either call returns.
// [Errors] Every bad frame is answered on the connection (OK false, CLOSED or NOTICE).
class RELAYCORE_API Session {
 public:
  virtual ~Session() = default;
  virtual void on_message(std::string_view frame) = 0;
  // Handles the frame as on_message() does when that needs no waiting and returns true; returns
  // false, having changed nothing, when it might have to wait: the relay's queue for it is full,
  // or it would call a host policy, which may block. The transport then passes the same frame
  // to on_message() from a thread that may block. A transport calls this from the thread that
  // read the frame, which saves a hand-off to another thread per message; it may also verify
  // an EVENT's signature there, so it is for transports with a reader thread per core or so.
  virtual bool try_on_message(std::string_view frame) {
    (void)frame;
    return false;
  }
  // The connection has written out some of its queued bytes. A REQ whose history paused
  // because the connection was full resumes from here, so a transport calls it after each write
  // that lowered queued_bytes() (from any thread; not concurrently with on_close()). Cheap when
  // nothing waits, and never blocks.
  virtual void on_drain() = 0;
  // The transport is gone: subscriptions end, and nothing more is sent.
  virtual void on_close() = 0;
  // The NIP-42 challenge for this session ("" when AUTH is off).
  virtual std::string auth_challenge() const = 0;
};

}  // namespace relaycore
