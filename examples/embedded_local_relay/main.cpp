// relaycore-embedded-local-relay: what a desktop app does with relaycore. It starts a relay
// in-process on 127.0.0.1 with a port the OS picks and its own data directory, then talks to it
// as any Nostr client would, over a real WebSocket: it publishes a signed note, reads it back
// with a REQ until EOSE, and shuts everything down in order.
//
//   $ relaycore-embedded-local-relay [DATA_DIR]   (default: a fresh temporary directory, removed
//                                                 at exit; a given directory is kept)
//
// Exits 0 when the note went in and came back, non-zero on any failure.
#include <stdlib.h>  // mkdtemp

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/local_handler.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/websocket/client.hpp"
#include "relaycore/websocket/server.hpp"

using namespace relaycore;

namespace {

constexpr std::chrono::seconds kTimeout{5};

int fail(const std::string& what) {
  std::fprintf(stderr, "relaycore-embedded-local-relay: %s\n", what.c_str());
  return 1;
}

// Sends one frame and prints it.
bool send(websocket::Client& client, const std::string& frame) {
  std::printf("> %s\n", frame.c_str());
  Status s = client.send_text(frame);
  if (!s) fail(s.message());
  return s.is_ok();
}

// Prints frames as they come until one starts with `prefix`; that one is returned.
std::optional<std::string> receive_until(websocket::Client& client, const std::string& prefix,
                                         const std::string& watch_for, bool& seen) {
  for (;;) {
    Result<std::string> frame = client.receive_text(kTimeout);
    if (!frame) {
      fail("waiting for " + prefix + ": " + frame.error().message());
      return std::nullopt;
    }
    std::printf("< %s\n", frame->c_str());
    if (!watch_for.empty() && *frame == watch_for) seen = true;
    if (frame->starts_with(prefix)) return *frame;
  }
}

// The app's part: a client of its own relay.
int run_client(std::uint16_t port) {
  Result<std::unique_ptr<websocket::Client>> connected =
      websocket::Client::connect("ws://127.0.0.1:" + std::to_string(port));
  if (!connected) return fail(connected.error().message());
  websocket::Client& client = *connected.value();

  EventDraft draft;
  draft.created_at = static_cast<std::int64_t>(std::time(nullptr));
  draft.content = "a note kept by my desktop app's own relay";
  Keypair keys = Keypair::generate();
  Result<EventPtr> note = sign_event(keys, std::move(draft));
  if (!note) return fail(note.error().message());
  const std::string id((*note)->id_hex());
  const std::string json((*note)->json());

  bool unused = false;
  if (!send(client, R"(["EVENT",)" + json + "]")) return 1;
  auto ok = receive_until(client, R"(["OK",")" + id + "\"", "", unused);
  if (!ok) return 1;
  if (*ok != R"(["OK",")" + id + R"(",true,""])") return fail("the note was refused");

  bool found = false;
  const std::string req =
      R"(["REQ","mine",{"authors":[")" + std::string((*note)->pubkey_hex()) + R"("]}])";
  if (!send(client, req)) return 1;
  if (!receive_until(client, R"(["EOSE","mine"])", R"(["EVENT","mine",)" + json + "]", found)) {
    return 1;
  }
  if (!found) return fail("the REQ did not return the note");
  if (!send(client, R"(["CLOSE","mine"])")) return 1;
  client.close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool temporary = argc < 2;
  if (!temporary) {
    dir = argv[1];
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return fail("cannot create " + dir + ": " + ec.message());
  } else {
    std::string pattern = std::filesystem::temp_directory_path() / "relaycore-local-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) return fail("cannot make a temporary directory");
    dir = pattern;
  }

  int status = 1;
  {
    Options options;
    options.sqlite.path = dir + "/relay.db";
    options.info.name = "local relay";
    Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(options));
    if (!relay) return fail("cannot open the relay: " + relay.error().message());

    websocket::ServerOptions server_options;
    server_options.host = "127.0.0.1";  // this machine only
    server_options.port = 0;            // any free port
    auto handler = std::make_shared<relaycore_examples::LocalHandler>(**relay);
    Result<std::unique_ptr<websocket::Server>> server =
        websocket::Server::start(server_options, handler);
    if (!server) return fail("cannot listen: " + server.error().message());
    std::printf("local relay on ws://127.0.0.1:%u, data in %s\n", (*server)->port(), dir.c_str());

    status = run_client((*server)->port());

    // Drain the relay first, so anything in flight is answered, then close the connections.
    (*relay)->shutdown();
    (*server)->stop();
    std::printf("stopped\n");
  }
  if (temporary) std::filesystem::remove_all(dir);
  return status;
}
