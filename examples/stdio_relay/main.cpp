// relaycore-stdio-relay: NIP-01 over stdin and stdout, one JSON message per line. There is no
// socket anywhere: the host's whole transport is a Connection that prints frames and a loop that
// feeds lines to a Session. The same core serves WebSockets in relaycore-relay.
//
//   $ relaycore-stdio-relay --memory < requests.jsonl > replies.jsonl
//
// At end of input the relay drains, so every EVENT read gets its OK printed before exit.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "relaycore/connection.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"

using namespace relaycore;

namespace {

constexpr const char* kUsage =
    "usage: relaycore-stdio-relay [--memory | --db PATH]\n"
    "\n"
    "Reads NIP-01 client messages from stdin, one per line, and writes the relay's answers to\n"
    "stdout, one per line.\n"
    "\n"
    "  --memory    keep events in memory (the default)\n"
    "  --db PATH   keep events in this SQLite database\n"
    "  --help      show this help\n";

// The connection is stdout. A frame is written part by part (an EVENT frame's middle part is
// the event's shared canonical JSON, so nothing is copied) and ended with a newline; the mutex
// keeps frames whole when relaycore threads send to it.
//
// Connection::send() must not block. Writing to a pipe blocks only while the reader is not
// reading, which for a line-oriented tool is the reader's own choice; a network transport would
// queue the frame instead and report the backlog in queued_bytes().
class StdoutConnection final : public Connection {
 public:
  void send(Frame frame) override {
    std::lock_guard lock(mutex_);
    for (std::string_view part : frame.parts()) {
      if (!part.empty()) std::fwrite(part.data(), 1, part.size(), stdout);  // unused parts: null
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  // relaycore closes a connection it gives up on (a slow consumer); stdin is not read after it.
  void close(std::string_view reason) override {
    std::lock_guard lock(mutex_);
    std::fprintf(stderr, "relaycore-stdio-relay: connection closed: %.*s\n",
                 static_cast<int>(reason.size()), reason.data());
    closed_ = true;
  }

  // Every frame is written before send() returns.
  std::size_t queued_bytes() const override { return 0; }

  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  mutable std::mutex mutex_;
  bool closed_ = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "relaycore-stdio-relay: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string db;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--memory") {
      db.clear();
    } else if (arg == "--db") {
      if (i + 1 >= argc) usage_error("--db needs a path");
      db = argv[++i];
    } else {
      usage_error("unknown option \"" + std::string(arg) + "\"");
    }
  }

  Options options;
  if (db.empty()) {
    options.storage = new_memory_storage();
  } else {
    options.sqlite.path = db;
  }
  // One client: small pools are plenty.
  options.verify_threads = 2;
  options.reader_threads = 1;

  Result<std::unique_ptr<Relay>> opened = Relay::open(std::move(options));
  if (!opened) {
    std::fprintf(stderr, "relaycore-stdio-relay: cannot open the relay: %s\n",
                 opened.error().message().c_str());
    return 1;
  }
  std::unique_ptr<Relay> relay = std::move(opened).value();

  auto connection = std::make_shared<StdoutConnection>();
  ClientInfo client;
  client.remote_address = "stdio";
  std::shared_ptr<Session> session = relay->open_session(connection, client);

  // Lines are handed over in order. on_message() blocks while the ingest queue is full, which
  // is exactly the back-pressure a pipe wants: we stop reading until the relay catches up.
  std::ios::sync_with_stdio(false);
  std::string line;
  while (!connection->closed() && std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    session->on_message(line);
  }

  // End of input. Drain before closing the session: shutdown() commits and answers every EVENT
  // already read and serves the queued REQs and COUNTs on the still-open session; closing first
  // would drop those answers.
  Status drained = relay->shutdown();
  session->on_close();
  if (!drained) {
    std::fprintf(stderr, "relaycore-stdio-relay: shutdown: %s\n", drained.message().c_str());
    return 1;
  }
  return 0;
}
