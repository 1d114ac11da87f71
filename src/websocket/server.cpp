// The listening side: binding, the accept loop, the I/O threads, stats and an orderly stop.
#include "relaycore/websocket/server.hpp"

#include "websocket/asio_include.hpp"

#include <unistd.h>

#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "util/text.hpp"
#include "util/thread_name.hpp"
#include "websocket/connection.hpp"
#include "websocket/server_context.hpp"

namespace relaycore::websocket {
namespace {

using detail::ServerContext;
using detail::Strand;
using detail::Timer;
using detail::WsConnection;
using Acceptor = asio::ip::tcp::acceptor::rebind_executor<Strand>::other;

// How long stop() lets connections finish their close handshake before closing them hard.
constexpr std::chrono::milliseconds kStopGrace{1500};
// Pause before accepting again after an accept error (out of descriptors, say).
constexpr std::chrono::milliseconds kAcceptRetry{50};

Status listen_error(const ServerOptions& options, std::string_view what,
                    const asio::error_code& ec) {
  return Status::error("websocket: " + std::string(what) + " " + options.host + ":" +
                       std::to_string(options.port) + ": " + ec.message());
}

class ServerImpl final : public Server {
 public:
  explicit ServerImpl(std::shared_ptr<ServerContext> context)
      : context_(std::move(context)),
        acceptor_(asio::make_strand(*context_->io.front())),
        retry_timer_(acceptor_.get_executor()) {
    for (const auto& io : context_->io) work_.push_back(asio::make_work_guard(*io));
  }

  ~ServerImpl() override { stop(); }

  Status listen(const asio::ip::tcp::endpoint& endpoint) {
    const ServerOptions& options = context_->options;
    asio::error_code ec;
    protocol_ = endpoint.protocol();
    if (acceptor_.open(endpoint.protocol(), ec); ec) return listen_error(options, "open", ec);
    if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec) {
      return listen_error(options, "set SO_REUSEADDR on", ec);
    }
    if (acceptor_.bind(endpoint, ec); ec) return listen_error(options, "bind", ec);
    if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
      return listen_error(options, "listen on", ec);
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return Status::ok();
  }

  Status run() {
    accept_next();
    try {
      for (const auto& io : context_->io) {
        threads_.emplace_back([this, context = io.get()] { run_io(*context); });
      }
    } catch (const std::exception& e) {
      stop();
      return Status::error(std::string("websocket: cannot start I/O threads: ") + e.what());
    }
    return Status::ok();
  }

  std::uint16_t port() const override { return port_; }

  ServerStats stats() const override {
    const detail::ServerCounters& c = context_->counters;
    ServerStats s;
    s.connections_open = c.connections_open.load(std::memory_order_relaxed);
    s.connections_total = c.connections_total.load(std::memory_order_relaxed);
    s.protocol_errors = c.protocol_errors.load(std::memory_order_relaxed);
    s.oversize_closes = c.oversize_closes.load(std::memory_order_relaxed);
    s.outbound_overflow_closes = c.outbound_overflow_closes.load(std::memory_order_relaxed);
    s.idle_closes = c.idle_closes.load(std::memory_order_relaxed);
    s.accept_failures = c.accept_failures.load(std::memory_order_relaxed);
    return s;
  }

  // Stops the acceptor, then closes every connection: a close handshake first, a hard close
  // after the grace period. Connections leave the registry once their on_close() has run, so
  // when it is empty nothing of ours is pending and the I/O threads run out of work and end.
  void stop() override {
    std::lock_guard lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    asio::post(acceptor_.get_executor(), [this] {
      asio::error_code ignored;
      acceptor_.close(ignored);
      detail::cancel_timer(retry_timer_);
    });
    for (const auto& connection : context_->begin_stop()) connection->going_away();
    if (!context_->wait_empty(kStopGrace)) {
      for (const auto& connection : context_->begin_stop()) connection->abort();
      // Only a Session::on_message() that never returns can hold this up.
      while (!context_->wait_empty(std::chrono::seconds(1))) {
      }
    }
    work_.clear();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
    context_->messages.join();
    context_->writers.join();
  }

 private:
  void run_io(asio::io_context& io) {
    name_this_thread("rc-ws-io");
    for (;;) {
      try {
        io.run();
        return;
      } catch (...) {
        // A handler threw (bad_alloc, say). Keep serving the other connections.
      }
    }
  }

  void accept_next() {
    acceptor_.async_accept([this](const asio::error_code& ec, detail::Socket accepted) {
      if (!acceptor_.is_open()) return;
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        detail::bump(context_->counters.accept_failures);
        retry_timer_.expires_after(kAcceptRetry);
        retry_timer_.async_wait([this](const asio::error_code& wait_ec) {
          if (!wait_ec && acceptor_.is_open()) accept_next();
        });
        return;
      }
      // The connection goes to the I/O thread with the fewest connections now, as it arrives:
      // chosen when the accept began, it would not count those that left meanwhile.
      const std::size_t io = context_->least_loaded_io();
      std::optional<detail::Socket> socket = move_to(std::move(accepted), *context_->io[io]);
      if (socket) {
        auto connection = std::make_shared<WsConnection>(context_, std::move(*socket));
        if (context_->add(connection, io)) connection->start();
      } else {
        detail::bump(context_->counters.accept_failures);
      }
      accept_next();
    });
  }

  // The accepted socket, handed over to `io` (a socket cannot change its context, but its
  // descriptor can). Nothing if that failed; the descriptor is then closed.
  std::optional<detail::Socket> move_to(detail::Socket accepted, asio::io_context& io) {
    asio::error_code ec;
    const auto fd = accepted.release(ec);
    if (ec) return std::nullopt;  // `accepted` still owns the descriptor and closes it
    detail::Socket socket(asio::make_strand(io));
    if (socket.assign(protocol_, fd, ec); ec) {
      ::close(fd);
      return std::nullopt;
    }
    return socket;
  }

  std::shared_ptr<ServerContext> context_;
  Acceptor acceptor_;
  Timer retry_timer_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  asio::ip::tcp protocol_ = asio::ip::tcp::v4();
  std::mutex stop_mu_;
  bool stopped_ = false;
};

// A literal address, or the first result of resolving a name ("localhost").
std::optional<asio::ip::tcp::endpoint> resolve(const ServerOptions& options, asio::io_context& io,
                                               asio::error_code& ec) {
  const asio::ip::address address = asio::ip::make_address(options.host, ec);
  if (!ec) return asio::ip::tcp::endpoint(address, options.port);
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(options.host, std::to_string(options.port),
                                  asio::ip::tcp::resolver::passive, ec);
  if (ec || results.empty()) return std::nullopt;
  return results.begin()->endpoint();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& options,
                                              std::shared_ptr<Handler> handler) {
  if (!handler) return Status::error("websocket: no handler");
  ServerOptions opts = options;
  if (opts.threads == 0) opts.threads = 1;
  // Header names are compared lowercase (the parser lowercases the request's).
  for (char& c : opts.forwarded_header) c = ascii_lower(c);
  try {
    auto context = std::make_shared<ServerContext>(opts, std::move(handler));
    asio::error_code ec;
    std::optional<asio::ip::tcp::endpoint> endpoint = resolve(opts, *context->io.front(), ec);
    if (!endpoint) return listen_error(opts, "resolve", ec);
    auto server = std::make_unique<ServerImpl>(context);
    if (Status s = server->listen(*endpoint); !s) return s;
    if (Status s = server->run(); !s) return s;
    return std::unique_ptr<Server>(std::move(server));
  } catch (const std::exception& e) {
    return Status::error(std::string("websocket: cannot start: ") + e.what());
  }
}

}  // namespace relaycore::websocket
