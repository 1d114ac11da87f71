// Talking to a relaycore-relay child process: waiting for its lines and its port, and plain
// HTTP requests to it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>

#include "child_process.hpp"

namespace relaycore::examples_test {

// Reads the child's lines until one contains `needle`; every line read goes into `seen`.
inline bool wait_for_line(ChildProcess& child, const std::string& needle, std::string& seen) {
  while (std::optional<std::string> line = child.read_line()) {
    seen += *line + "\n";
    if (line->find(needle) != std::string::npos) return true;
  }
  return false;
}

// The port from "relaycore-relay listening on ws://127.0.0.1:PORT ...", or 0.
inline std::uint16_t wait_listening(ChildProcess& relay) {
  std::string seen;
  if (!wait_for_line(relay, "relaycore-relay listening on ws://127.0.0.1:", seen)) return 0;
  const std::size_t at = seen.rfind("ws://127.0.0.1:") + 15;
  return static_cast<std::uint16_t>(std::stoi(seen.substr(at)));
}

// The body of a plain HTTP GET of `target` with the given Accept header; "" when the request
// failed. The relay closes the connection after its response.
inline std::string http_get(std::uint16_t port, const std::string& target,
                            const std::string& accept = "*/*") {
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: " + accept + "\r\n\r\n";
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char chunk[4096];
    for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) {
      response.append(chunk, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  const std::size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

}  // namespace relaycore::examples_test
