// What the server and its connections share: options, the handler, counters, the I/O context,
// the message pool and the registry of live connections. Connections hold it by shared_ptr, so
// a Connection that a host keeps after the server has gone still has a valid io_context to be
// destroyed against.
#pragma once

#include "websocket/asio_include.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "relaycore/websocket/server.hpp"
#include "websocket/deflate.hpp"
#include "websocket/message_pool.hpp"
#include "websocket/writer_pool.hpp"

namespace relaycore::websocket::detail {

class WsConnection;

// Message threads the pool may add beyond ServerOptions::threads, one per blocked connection.
constexpr std::size_t kExtraMessageThreads = 64;

struct ServerCounters {
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> oversize_closes{0};
  std::atomic<std::uint64_t> outbound_overflow_closes{0};
  std::atomic<std::uint64_t> idle_closes{0};
  std::atomic<std::uint64_t> accept_failures{0};
};

inline void bump(std::atomic<std::uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
}

class ServerContext {
 public:
  ServerContext(const ServerOptions& opts, std::shared_ptr<Handler> h)
      : options(opts),
        handler(std::move(h)),
        messages(opts.threads, opts.threads + kExtraMessageThreads),
        writers(opts.threads) {
    for (std::size_t i = 0; i < std::max<std::size_t>(opts.threads, 1); ++i) {
      // A concurrency hint of 1: the one thread never wakes another to share the work.
      io.push_back(std::make_unique<asio::io_context>(1));
    }
    open_on_.assign(io.size(), 0);
  }

  // The index in `io` of the context with the fewest open connections (the first of those), for
  // the next one. Counting open connections rather than taking the contexts in turn keeps
  // long-lived connections apart when short ones (HTTP requests, probes) come and go between
  // them.
  std::size_t least_loaded_io() {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::min_element(open_on_.begin(), open_on_.end()) -
                                    open_on_.begin());
  }

  const ServerOptions options;
  const std::shared_ptr<Handler> handler;
  ServerCounters counters;
  // One per I/O thread, run by that thread alone; each connection lives on one of them, the one
  // with the fewest open connections when it arrives (least_loaded_io). A context shared by the
  // threads cost a wake-up of the other thread at every readiness event: the thread that returned
  // from epoll_wait hands the reactor to another before running the handler, and at moderate load
  // (8 clients at 4,000 events/s) that was about a tenth of the relay's CPU per event
  // (benchmarks/README.md). A connection that floods its thread does not hold up the others on it
  // for long: a handler reads at most 16 KiB and handles at most kMessagesPerTurn messages before
  // the others' handlers get their turn (connection.cpp).
  std::vector<std::unique_ptr<asio::io_context>> io;
  MessagePool messages;
  Deflate deflate;
  // Writes fan-out to connections, apart from the I/O threads, so that a burst of deliveries
  // never queues in front of a client's next read; replies do not wait for it at all.
  WriterPool writers;

  // Registers a new connection, which lives on io[io_index]; false once stop() has begun (the
  // caller drops it).
  bool add(const std::shared_ptr<WsConnection>& connection, std::size_t io_index) {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    live_.emplace(connection.get(), Live{connection, io_index});
    ++open_on_[io_index];
    bump(counters.connections_total);
    bump(counters.connections_open);
    return true;
  }

  // Called once a connection is fully over: socket closed and on_close() delivered.
  void remove(const WsConnection* connection) {
    std::lock_guard lock(mu_);
    if (auto it = live_.find(connection); it != live_.end()) {
      --open_on_[it->second.io_index];
      live_.erase(it);
      counters.connections_open.fetch_sub(1, std::memory_order_relaxed);
    }
    if (live_.empty()) empty_.notify_all();
  }

  // Refuses new connections from now on and returns the live ones.
  std::vector<std::shared_ptr<WsConnection>> begin_stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    std::vector<std::shared_ptr<WsConnection>> out;
    out.reserve(live_.size());
    for (auto& [key, live] : live_) out.push_back(live.connection);
    return out;
  }

  // Waits until every connection is removed; false on timeout.
  bool wait_empty(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return empty_.wait_for(lock, timeout, [&] { return live_.empty(); });
  }

 private:
  struct Live {
    std::shared_ptr<WsConnection> connection;
    std::size_t io_index;
  };

  std::mutex mu_;
  std::condition_variable empty_;
  bool stopping_ = false;
  std::unordered_map<const WsConnection*, Live> live_;
  // Open connections by context, as `io`.
  std::vector<std::size_t> open_on_;
};

}  // namespace relaycore::websocket::detail
