#include "subscriber_process.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "ws_peer.hpp"

extern char** environ;

namespace relaycore::loadgen {
namespace {

using namespace std::chrono_literals;

// What the subscriber process has seen; written from its io threads.
struct Arrivals {
  std::mutex mu;
  std::unordered_map<std::uint64_t, Arrival> by_id;
  std::size_t deliveries = 0;
  std::int64_t last_ns = 0;
  std::atomic<std::size_t> ready{0}, errors{0};
  std::string first_error;

  void note_error(const std::string& what) {
    errors.fetch_add(1);
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = what;
  }
};

// One subscribing connection: one REQ; counts EOSE and records every EVENT's arrival.
class Subscriber {
 public:
  Subscriber(asio::io_context& io, Arrivals& arrivals, const websocket::detail::WsUrl& url,
             std::string req)
      : arrivals_(arrivals), req_(std::move(req)) {
    peer_ = std::make_shared<WsPeer>(
        io, url,
        WsPeer::Callbacks{[this](const Status& s) { on_open(s); },
                          [this](std::string_view text) { on_text(text); },
                          [this](const std::string& why) { arrivals_.note_error(why); }});
  }
  void connect() { peer_->start(); }

 private:
  void on_open(const Status& s) {
    if (!s) return arrivals_.note_error(s.message());
    peer_->send_text(req_);
  }
  void on_text(std::string_view text) {
    if (text.starts_with("[\"EVENT\"")) {
      const std::int64_t now = now_ns();
      const std::string_view id = id_after(text, "{\"id\":\"");
      if (id.empty()) return;
      std::lock_guard lock(arrivals_.mu);
      Arrival& a = arrivals_.by_id[id_prefix(id)];
      if (a.count++ == 0) a.first_ns = now;
      a.last_ns = now;
      ++arrivals_.deliveries;
      arrivals_.last_ns = now;
    } else if (text.starts_with("[\"EOSE\"")) {
      arrivals_.ready.fetch_add(1);
    } else if (text.starts_with("[\"CLOSED\"") || text.starts_with("[\"NOTICE\"")) {
      arrivals_.note_error(std::string(text.substr(0, 200)));
    }
  }

  Arrivals& arrivals_;
  std::string req_;
  std::shared_ptr<WsPeer> peer_;
};

}  // namespace

int run_subscriber_role(const Config& c) {
  Result<websocket::detail::WsUrl> url = websocket::detail::parse_ws_url(c.sub_url);
  if (!url) {
    std::fprintf(stderr, "relaycore-loadgen: %s\n", url.error().message().c_str());
    return 2;
  }
  Arrivals arrivals;
  IoThreads io_threads(c.threads);
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  for (std::size_t i = 0; i < c.subscribers + c.idle_subscribers; ++i) {
    const std::string match = i < c.subscribers ? c.tag : c.tag + "-idle-" + std::to_string(i);
    asio::io_context& io = io_threads.next();
    subscribers.push_back(std::make_unique<Subscriber>(
        io, arrivals, url.value(), "[\"REQ\",\"lg\",{\"#t\":[\"" + match + "\"]}]"));
    asio::post(io, [s = subscribers.back().get()] { s->connect(); });
  }
  const std::size_t want = subscribers.size();
  const auto deadline = Clock::now() + 60s;
  while (arrivals.ready.load() < want && arrivals.errors.load() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
  }
  std::printf("ready %zu %zu\n", arrivals.ready.load(), arrivals.errors.load());
  std::fflush(stdout);
  // The parent says how many deliveries to wait for once its publishers are done.
  std::size_t expected = 0;
  if (std::scanf("%zu", &expected) != 1) expected = 0;
  std::size_t seen = 0;
  auto last_progress = Clock::now();
  for (;;) {
    std::size_t now_seen;
    {
      std::lock_guard lock(arrivals.mu);
      now_seen = arrivals.deliveries;
    }
    if (now_seen >= expected) break;
    if (now_seen != seen) {
      seen = now_seen;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > 2s) {
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  io_threads.stop();
  for (const auto& [prefix, a] : arrivals.by_id) {
    std::printf("a %" PRIu64 " %" PRId64 " %" PRId64 " %zu\n", prefix, a.first_ns, a.last_ns,
                a.count);
  }
  std::printf("done %zu %" PRId64 " %zu\n", arrivals.deliveries, arrivals.last_ns,
              arrivals.errors.load());
  if (!arrivals.first_error.empty()) {
    std::fprintf(stderr, "relaycore-loadgen subscribers: %s\n", arrivals.first_error.c_str());
  }
  std::fflush(stdout);
  std::_Exit(0);  // the connections are dropped without a close handshake
}

bool SubscriberProcess::start(const char* argv0, const Config& c, const std::string& tag) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, in[1]);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<std::string> args = {argv0,
                                   "--role",
                                   "subscribers",
                                   "--tag",
                                   tag,
                                   "--url",
                                   c.sub_url,
                                   "--subscribers",
                                   std::to_string(c.subscribers),
                                   "--idle-subscribers",
                                   std::to_string(c.idle_subscribers),
                                   "--threads",
                                   std::to_string(c.threads)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // /proc/self/exe: the same binary, wherever it was started from.
  const int rc = posix_spawn(&pid_, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  to_ = fdopen(in[1], "w");
  from_ = fdopen(out[0], "r");
  if (rc != 0 || !to_ || !from_) {
    std::fprintf(stderr, "relaycore-loadgen: could not start the subscriber process\n");
    return false;
  }
  std::size_t ready = 0, errors = 0;
  if (std::fscanf(from_, " ready %zu %zu", &ready, &errors) != 2 ||
      ready < c.subscribers + c.idle_subscribers) {
    std::fprintf(stderr, "relaycore-loadgen: only %zu of %zu subscriptions got EOSE\n", ready,
                 c.subscribers + c.idle_subscribers);
    return false;
  }
  return true;
}

std::vector<Arrival> SubscriberProcess::finish(std::size_t expected, std::size_t& deliveries,
                                               std::int64_t& last_ns) {
  std::vector<Arrival> out;
  deliveries = 0;
  last_ns = 0;
  if (!to_ || !from_) return out;
  std::fprintf(to_, "%zu\n", expected);
  std::fflush(to_);
  char kind[8];
  while (std::fscanf(from_, " %7s", kind) == 1) {
    if (std::string_view(kind) == "a") {
      Arrival a;
      if (std::fscanf(from_, " %" SCNu64 " %" SCNd64 " %" SCNd64 " %zu", &a.id_prefix, &a.first_ns,
                      &a.last_ns, &a.count) != 4) {
        break;
      }
      out.push_back(a);
    } else {
      std::size_t errors = 0;
      if (std::fscanf(from_, " %zu %" SCNd64 " %zu", &deliveries, &last_ns, &errors) != 3) break;
      break;
    }
  }
  return out;
}

SubscriberProcess::~SubscriberProcess() {
  if (to_) std::fclose(to_);
  if (from_) std::fclose(from_);
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

}  // namespace relaycore::loadgen
