// relaycore-bench-ws-memory: the resident memory an idle WebSocket connection costs the relay.
// Starts relaycore-relay (memory as its users run it: SQLite storage, the WebSocket server),
// raises the open-file limit of both processes, warms the relay up with a few hundred
// connections, then opens N connections that complete the handshake and stay idle, and reports
// (RSS with N connections - RSS before) / N. The goal is at most 16 KiB per connection, with
// permessage-deflate negotiated too (--deflate).
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "../../tests/examples/child_process.hpp"
#include "ws_peer.hpp"

namespace relaycore::loadgen {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kWarmup = 200;
// Client-side read space per idle connection: only handshake responses and pings arrive.
constexpr std::size_t kIdleReadChunk = 1024;

// VmRSS of `pid` in KiB, from /proc.
std::size_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// Runs handlers for up to 100 ms. An io_context that ran out of work is stopped and must be
// restarted before it runs again.
void run_a_while(asio::io_context& io) {
  if (io.stopped()) io.restart();
  io.run_for(100ms);
}

// Opens `n` connections on `io` and runs it until each has completed its handshake or failed.
// Returns how many are open.
std::size_t open_connections(asio::io_context& io, const websocket::detail::WsUrl& url,
                             std::size_t n, std::vector<std::shared_ptr<WsPeer>>& out,
                             const std::string& extensions) {
  std::size_t open = 0, failed = 0;
  std::string first_error;
  for (std::size_t i = 0; i < n; ++i) {
    auto peer = std::make_shared<WsPeer>(io, url,
                                         WsPeer::Callbacks{[&](const Status& s) {
                                                             if (s) {
                                                               ++open;
                                                             } else {
                                                               ++failed;
                                                               if (first_error.empty())
                                                                 first_error = s.message();
                                                             }
                                                           },
                                                           nullptr, nullptr},
                                         kIdleReadChunk);
    if (!extensions.empty()) peer->offer_extensions(extensions);
    peer->start();
    out.push_back(std::move(peer));
    // Keep the accept queue short: let the handshakes catch up every few hundred connections.
    while (out.size() - open - failed > 256) run_a_while(io);
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (open + failed < n && std::chrono::steady_clock::now() < deadline) run_a_while(io);
  if (failed > 0) std::fprintf(stderr, "%zu connections failed: %s\n", failed, first_error.c_str());
  return open;
}

int run_main(int argc, char** argv) {
  std::size_t n = 10000;
  std::string relay_bin = RELAYCORE_RELAY_BIN;
  bool json = false;
  std::string extensions;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--connections" && i + 1 < argc) {
      n = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--relay" && i + 1 < argc) {
      relay_bin = argv[++i];
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--deflate") {
      // What Chromium offers; the relay agrees, so each connection has deflate negotiated.
      extensions = "permessage-deflate; client_max_window_bits";
    } else {
      std::fprintf(stderr,
                   "usage: relaycore-bench-ws-memory [--connections N] [--relay PATH] [--deflate] "
                   "[--json]\n");
      return 2;
    }
  }
  // Both processes need a descriptor per connection (the relay inherits the raised limit).
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < n + kWarmup + 100) {
    std::fprintf(stderr, "the open-file limit (%llu) is too low for %zu connections\n",
                 static_cast<unsigned long long>(limit.rlim_cur), n);
    return 1;
  }

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("relaycore-ws-memory-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  examples_test::ChildProcess relay(
      {relay_bin, "--listen", "127.0.0.1:0", "--db", (dir / "relay.db").string()});
  std::optional<std::string> banner = relay.read_line(10s);
  const std::size_t at = banner ? banner->find("ws://") : std::string::npos;
  if (at == std::string::npos) {
    std::fprintf(stderr, "relaycore-relay did not start\n");
    return 1;
  }
  const std::string url_text = banner->substr(at, banner->find(' ', at) - at);
  Result<websocket::detail::WsUrl> url = websocket::detail::parse_ws_url(url_text);
  if (!url) return 1;

  asio::io_context io(1);
  {
    // Warm-up: thread stacks, allocator arenas and the session machinery are paid once.
    std::vector<std::shared_ptr<WsPeer>> warm;
    open_connections(io, url.value(), kWarmup, warm, extensions);
    for (auto& p : warm) p->stop();
    io.restart();
    io.run_for(500ms);
  }
  std::this_thread::sleep_for(1s);
  const std::size_t before = rss_kib(relay.pid());
  std::vector<std::shared_ptr<WsPeer>> peers;
  const std::size_t open = open_connections(io, url.value(), n, peers, extensions);
  io.restart();
  io.run_for(2s);  // idle: let the relay settle
  const std::size_t after = rss_kib(relay.pid());
  const double per_conn =
      open > 0 ? static_cast<double>(after - std::min(after, before)) * 1024.0 / open : 0;
  if (json) {
    std::printf(
        "{\"deflate\":%s,\"connections\":%zu,\"rss_before_kib\":%zu,\"rss_after_kib\":%zu,"
        "\"bytes_per_connection\":%.0f,\"kib_per_connection\":%.2f}\n",
        extensions.empty() ? "false" : "true", open, before, after, per_conn, per_conn / 1024.0);
  } else {
    std::printf("idle WebSocket connections: %zu open%s\n", open,
                extensions.empty() ? "" : ", permessage-deflate negotiated");
    std::printf("relay RSS: %zu KiB before, %zu KiB after\n", before, after);
    std::printf("per idle connection: %.0f bytes (%.2f KiB; goal <= 16 KiB)\n", per_conn,
                per_conn / 1024.0);
  }
  for (auto& p : peers) p->stop();
  ::kill(relay.pid(), SIGTERM);
  relay.wait(10s);
  std::filesystem::remove_all(dir);
  return open == n ? 0 : 1;
}

}  // namespace
}  // namespace relaycore::loadgen

int main(int argc, char** argv) { return relaycore::loadgen::run_main(argc, argv); }
