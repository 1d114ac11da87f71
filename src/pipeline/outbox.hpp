// Outbox: the outbound side of one session. It keeps the session's frames in order, writes them
// to the host's Connection from one thread at a time, measures the connection against its caps,
// and closes it when the reader falls too far behind.
//
// Two caps apply. Live events are refused past the hard cap (Options::max_outbound_bytes): the
// connection is closed as a slow consumer. History is produced only while the connection is
// under the soft cap (half the hard cap); past it the query parks and waits for on_drain(), so a
// large result set never looks like a slow reader and never holds a thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/callback_executor.hpp"
#include "relaycore/connection.hpp"
#include "util/log.hpp"

namespace relaycore::pipeline {

class Outbox : public std::enable_shared_from_this<Outbox> {
 public:
  // `log` hears of a Connection::close() that threw.
  Outbox(std::shared_ptr<Connection> connection, std::size_t hard_cap, Log log);

  // `f` runs once, with no lock held, when the outbox closes the connection itself (close() or
  // a slow consumer; `slow` says which); not when the host reports the connection gone through
  // detach(). Set it before the outbox is shared with other threads.
  void set_on_closed(std::function<void(bool slow)> f) { on_closed_ = std::move(f); }

  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Queues a frame without touching the connection; safe under the caller's locks.
  void enqueue(Frame frame);
  // Writes queued frames to the connection, all that are queued in one send_batch(), unless
  // another thread already is. Within a FlushScope it only notes the outbox for the scope's
  // end. Call with no relaycore lock held: it calls into the host.
  void flush();
  // enqueue() then flush().
  void send(Frame frame);

  // True when `bytes` more stay under the soft cap, counting what the connection holds and
  // what is queued here.
  bool has_room(std::size_t bytes) const;
  // True when the connection has drained to a quarter of the hard cap: a parked query resumes
  // only then, so that it does not park again after a frame or two.
  bool drained() const;

  // Closes the connection as a slow consumer: its reader fell behind the hard cap or stayed
  // over the soft cap past the deadline. Returns false if the outbox was already closed.
  // Connection::close() never overlaps a Connection::send(): a close that arrives during a
  // flush is carried out by the flushing thread once its sends are done.
  bool close_slow_consumer();
  // Closes the connection after the frames already queued; `reason` is for the close frame.
  // Returns false if the outbox was already closed.
  bool close(std::string_view reason);

  // The host reported the connection gone: drop what is queued, send nothing more.
  // Returns false if the outbox was already closed.
  bool detach();

  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

 private:
  friend class FlushScope;
  void flush_now();
  std::size_t queued_bytes_locked() const;
  // Takes the connection for a pending close; called with mu_ held.
  std::shared_ptr<Connection> take_for_close_locked();
  bool close_with(std::string reason, bool slow);

  const std::size_t hard_cap_;
  const Log log_;
  std::function<void(bool slow)> on_closed_;

  mutable std::mutex mu_;  // guards everything below but closed_
  std::shared_ptr<Connection> connection_;
  std::vector<Frame> out_;
  // The frames a flush is handing to the connection, swapped with out_ so that both keep their
  // capacity; touched only by the flushing thread.
  std::vector<Frame> sending_;
  std::size_t out_bytes_ = 0;
  bool flushing_ = false;
  bool close_pending_ = false;
  std::string close_reason_;
  std::atomic<bool> closed_{false};
};

// While one lives on a thread, Outbox::flush() there only notes its outbox, and the outermost
// scope flushes each noted outbox once as it ends. A stage that sends many frames at once (the
// OKs of a commit, the fan-out of a dispatch batch) so hands each connection all of its frames
// together, which a transport writes with one system call. The scope is also a CallbackBatch,
// which ends after the flushes: host callbacks posted meanwhile, the in-process connections'
// flushes among them, wake the callback thread once. Create with no relaycore lock held.
class FlushScope {
 public:
  FlushScope();
  ~FlushScope();
  FlushScope(const FlushScope&) = delete;
  FlushScope& operator=(const FlushScope&) = delete;

 private:
  // Destroyed after the destructor's flushes have run.
  CallbackBatch callbacks_;
};

}  // namespace relaycore::pipeline
