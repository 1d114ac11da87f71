// relaycore-embedded-local-relay: what a desktop app does with relaycore. It opens a relay in its
// own data directory and uses it in process: a live subscription whose callbacks feed the app, a
// change listener that keeps a cache right, a note published with submit(), and a typed query.
// It also serves ws://127.0.0.1:PORT so that other apps on the machine can share the relay.
//
//   $ relaycore-embedded-local-relay [DATA_DIR]   (default: a fresh temporary directory, removed
//                                                 at exit; a given directory is kept)
//
// Exits 0 when the note went in, reached the subscription and the listener, and came back from
// a query; non-zero on any failure.
#include <stdlib.h>  // mkdtemp

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/local_handler.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/websocket/server.hpp"

using namespace relaycore;

namespace {

constexpr std::chrono::seconds kTimeout{5};

int fail(const std::string& what) {
  std::fprintf(stderr, "relaycore-embedded-local-relay: %s\n", what.c_str());
  return 1;
}

// What the app's callbacks have seen. They run on relaycore's callback thread; a GUI app would
// hand each event to its UI thread instead.
struct Feed {
  std::mutex mu;
  std::condition_variable changed;
  bool eose = false;
  std::vector<EventPtr> events;  // from the subscription
  std::size_t cached = 0;        // events the listener has seen stored
  std::string closed;

  bool wait(const std::function<bool()>& done) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, kTimeout, done);
  }
};

int run(Relay& relay) {
  Feed feed;
  Keypair keys = Keypair::generate();
  Filter mine;
  mine.authors = std::vector<Pubkey>{keys.pubkey()};

  SubscribeCallbacks callbacks;
  callbacks.on_event = [&](const EventPtr& e) {
    std::lock_guard lock(feed.mu);
    std::printf("feed: %s \"%s\"\n", std::string(e->id_hex()).c_str(), e->content().c_str());
    feed.events.push_back(e);
    feed.changed.notify_all();
  };
  callbacks.on_eose = [&] {
    std::lock_guard lock(feed.mu);
    std::printf("feed: end of stored notes\n");
    feed.eose = true;
    feed.changed.notify_all();
  };
  callbacks.on_closed = [&](std::string_view reason) {
    std::lock_guard lock(feed.mu);
    feed.closed = std::string(reason);
    feed.changed.notify_all();
  };
  Result<std::unique_ptr<SubscriptionHandle>> subscription = relay.subscribe({mine}, callbacks);
  if (!subscription) return fail(subscription.error().message());
  std::unique_ptr<ListenerHandle> listener = relay.listen([&](const ChangeBatch& batch) {
    std::lock_guard lock(feed.mu);
    feed.cached += batch.stored.size();
    std::printf("listener: %zu stored, %zu removed\n", batch.stored.size(), batch.removed.size());
    feed.changed.notify_all();
  });
  if (!feed.wait([&] { return feed.eose; })) return fail("no end of stored notes");

  EventDraft draft;
  draft.created_at = static_cast<std::int64_t>(std::time(nullptr));
  draft.content = "a note kept by my desktop app's own relay";
  Result<EventPtr> note = sign_event(keys, std::move(draft));
  if (!note) return fail(note.error().message());
  OkResult ok = relay.submit(*note);
  std::printf("submit: %s%s\n", ok.accepted ? "accepted" : "refused ", ok.message.c_str());
  if (!ok.accepted) return fail("the note was refused");

  if (!feed.wait([&] { return !feed.events.empty() && feed.cached > 0; })) {
    return fail("the note did not reach the feed and the listener");
  }
  bool found = false;
  Status queried = relay.query({mine}, [&](const EventPtr& e) {
    found = found || e->id() == (*note)->id();
    return true;
  });
  if (!queried) return fail(queried.message());
  std::printf("query: %s\n", found ? "found the note" : "did not find the note");
  Result<std::uint64_t> count = relay.count({mine});
  if (!count) return fail(count.error().message());
  std::printf("count: %llu\n", static_cast<unsigned long long>(*count));
  return found && *count == 1 ? 0 : 1;
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

    // Other apps on this machine may use the same relay over ws://127.0.0.1.
    websocket::ServerOptions server_options;
    server_options.host = "127.0.0.1";  // this machine only
    server_options.port = 0;            // any free port
    auto handler = std::make_shared<relaycore_examples::LocalHandler>(**relay);
    Result<std::unique_ptr<websocket::Server>> server =
        websocket::Server::start(server_options, handler);
    if (!server) return fail("cannot listen: " + server.error().message());
    std::printf("local relay on ws://127.0.0.1:%u, data in %s\n", (*server)->port(), dir.c_str());

    status = run(**relay);

    // Drain the relay first, so anything in flight is answered, then close the connections.
    if (Status s = (*relay)->shutdown(); !s) status = fail("shutdown: " + s.message());
    (*server)->stop();
    std::printf("stopped\n");
  }
  if (temporary) std::filesystem::remove_all(dir);
  return status;
}
