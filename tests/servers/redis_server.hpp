// A throwaway redis-server (the Debian package's /usr/bin/redis-server) for tests: a free
// loopback port, a temporary directory, no persistence. Tests kill it with SIGKILL and start it
// again on the same port to see what the relay does while Redis is away.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "conformance/temp_dir.hpp"
#include "examples/child_process.hpp"
#include "servers/free_port.hpp"

namespace relaycore::test_servers {

class RedisServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";

  // Starts the server; check running().
  RedisServer() : port_(free_loopback_port()) { start(); }

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // True once the server answered PING.
  bool running() const { return process_ != nullptr; }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // SIGKILL, as a crash or an OOM kill would; every client connection breaks.
  void kill() { process_.reset(); }

  // SIGSTOP / SIGCONT: a server that hangs with its connections open, the case timeouts are for.
  void pause() {
    if (process_) ::kill(process_->pid(), SIGSTOP);
  }
  void resume() {
    if (process_) ::kill(process_->pid(), SIGCONT);
  }

  // Starts it again on the same port (nothing survives: there is no persistence).
  bool restart() {
    kill();
    return start();
  }

 private:
  bool start() {
    if (port_ == 0 || dir_.path().empty()) return false;
    auto process = std::make_unique<examples_test::ChildProcess>(
        // setpriv: the server gets SIGKILL when the test dies, so none outlives a crashed run.
        std::vector<std::string>{"/usr/bin/setpriv", "--pdeathsig", "KILL", "--", kBinary, "--port",
                                 std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", dir_.path(), "--logfile",
                                 dir_.file("redis.log"), "--daemonize", "no"});
    if (!process->started()) return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (answers_ping()) {
        process_ = std::move(process);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Sends the inline command PING and expects +PONG within a second.
  bool answers_ping() const {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = false;
    char reply[16] = {};
    pollfd p{fd, POLLIN, 0};
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::write(fd, "PING\r\n", 6) == 6 && ::poll(&p, 1, 1000) == 1) {
      ok = ::read(fd, reply, sizeof(reply) - 1) >= 5 && std::string(reply, 5) == "+PONG";
    }
    ::close(fd);
    return ok;
  }

  conformance::TempDir dir_;
  int port_;
  std::unique_ptr<examples_test::ChildProcess> process_;
};

}  // namespace relaycore::test_servers
