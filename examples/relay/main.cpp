// relaycore-relay: a complete Nostr relay made of relaycore and its WebSocket transport, on the
// embedded SQLite default. This is what a newcomer runs first.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "relaycore/logger.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/stats.hpp"
#include "relaycore/websocket/server.hpp"
#ifdef RELAYCORE_WITH_POSTGRES
#include "relaycore/postgres.hpp"
#endif
#ifdef RELAYCORE_WITH_REDIS
#include "relaycore/redis.hpp"
#endif

using namespace relaycore;

namespace {

constexpr const char* kUsage =
    "usage: relaycore-relay [options]\n"
    "\n"
    "  --listen HOST:PORT   address to listen on (default 127.0.0.1:7777; port 0 picks one)\n"
    "  --db PATH            SQLite database (default ./relaycore.db)\n"
    "  --audit PATH         keep a hash-chained audit log in this SQLite file\n"
    "  --threads N          WebSocket I/O threads (default 2); verification uses all cores\n"
    "                       but one\n"
    "  --auth               send a NIP-42 AUTH challenge on connect\n"
    "  --relay-url URL      the URL AUTH events must name (default ws://HOST:PORT)\n"
    "  --dispatch MODE      deferred (default: fan-out after the OK) or inline (before it)\n"
    "  --postgres CONNINFO  store events in PostgreSQL instead of --db (a libpq conninfo\n"
    "                       or postgresql:// URI); nodes sharing one database share storage\n"
    "  --redis URL          carry live events to other nodes over Redis (redis://HOST:PORT[/DB])\n"
    "  --log-level LEVEL    debug, info (default), warn or error: the least severe lines\n"
    "                       written to stderr (startup at info, failures at warn and error)\n"
    "  --help               show this help\n";

struct Flags {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7777;
  std::string db = "./relaycore.db";
  std::string audit;
  std::size_t threads = 2;
  bool auth = false;
  std::string relay_url;
  DispatchMode dispatch = DispatchMode::kDeferred;
  std::string postgres;
  std::string redis;
  LogLevel log_level = LogLevel::kInfo;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "relaycore-relay: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

bool parse_number(std::string_view s, unsigned long max, unsigned long& out) {
  if (s.empty() || s.size() > 10) return false;
  unsigned long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned long>(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--listen") {
      std::string v = value();
      std::size_t colon = v.rfind(':');
      unsigned long port = 0;
      if (colon == std::string::npos || colon == 0 ||
          !parse_number(std::string_view(v).substr(colon + 1), 65535, port)) {
        usage_error("--listen wants HOST:PORT, got \"" + v + "\"");
      }
      f.host = v.substr(0, colon);
      f.port = static_cast<std::uint16_t>(port);
    } else if (arg == "--db") {
      f.db = value();
    } else if (arg == "--audit") {
      f.audit = value();
    } else if (arg == "--threads") {
      std::string v = value();
      unsigned long n = 0;
      if (!parse_number(v, 256, n) || n == 0) usage_error("--threads wants 1 to 256");
      f.threads = n;
    } else if (arg == "--auth") {
      f.auth = true;
    } else if (arg == "--relay-url") {
      f.relay_url = value();
    } else if (arg == "--dispatch") {
      std::string v = value();
      if (v == "deferred") {
        f.dispatch = DispatchMode::kDeferred;
      } else if (v == "inline") {
        f.dispatch = DispatchMode::kInline;
      } else {
        usage_error("--dispatch wants deferred or inline, got \"" + v + "\"");
      }
    } else if (arg == "--log-level") {
      std::string v = value();
      Result<LogLevel> level = parse_log_level(v);
      if (!level) usage_error("--log-level wants debug, info, warn or error, got \"" + v + "\"");
      f.log_level = *level;
    } else if (arg == "--redis") {
      f.redis = value();
#ifndef RELAYCORE_WITH_REDIS
      usage_error("--redis: this build has no Redis support (hiredis was not found)");
#endif
    } else if (arg == "--postgres") {
      f.postgres = value();
#ifndef RELAYCORE_WITH_POSTGRES
      usage_error("--postgres: this build has no PostgreSQL support (libpq was not found)");
#endif
    } else {
      usage_error("unknown option \"" + std::string(arg) + "\"");
    }
  }
  return f;
}

// Serves WebSocket sessions from the relay, and on plain HTTP the NIP-11 document and metrics.
class RelayHandler final : public websocket::Handler {
 public:
  explicit RelayHandler(Relay& relay) : relay_(relay) {}

  std::shared_ptr<Session> on_open(std::shared_ptr<Connection> connection,
                                   ClientInfo client) override {
    return relay_.open_session(std::move(connection), std::move(client));
  }

  std::optional<websocket::HttpResponse> on_http(const websocket::HttpRequest& request) override {
    websocket::HttpResponse r;
    r.headers.emplace_back("Access-Control-Allow-Origin", "*");
    r.headers.emplace_back("Access-Control-Allow-Headers", "*");
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET, OPTIONS");
    if (request.method == "OPTIONS") {
      r.status = 204;
      return r;
    }
    if (request.method != "GET") return std::nullopt;
    std::string_view target = request.target;
    if (target == "/metrics") {
      r.content_type = "text/plain; version=0.0.4";
      r.body = prometheus_text(relay_.stats());
      return r;
    }
    if (target != "/" && target.substr(0, 2) != "/?") return std::nullopt;
    if (request.header("accept").find("application/nostr+json") != std::string::npos) {
      r.content_type = "application/nostr+json";
      r.body = relay_.info_document();
      return r;
    }
    r.body = "relaycore relay: connect with a Nostr client over WebSocket.\n";
    return r;
  }

 private:
  Relay& relay_;
};

}  // namespace

int main(int argc, char** argv) {
  Flags flags = parse_flags(argc, argv);

  // Signals are taken by sigwait() below; every thread started after this inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // One logger for the relay's lines and relaycore's own. stdout carries only the "listening"
  // line that scripts wait for.
  std::shared_ptr<Logger> logger = new_stderr_logger(flags.log_level);
  auto log = [&logger](LogLevel level, const std::string& line) {
    logger->log(level, "relaycore-relay: " + line);
  };

  Options options;
  options.logger = logger;
  options.log_level = flags.log_level;
  options.sqlite.path = flags.db;
  options.auth_on_connect = flags.auth;
  options.dispatch = flags.dispatch;
  if (!flags.audit.empty()) {
    SqliteAuditOptions audit;
    audit.path = flags.audit;
    Result<std::shared_ptr<AuditSink>> sink = new_sqlite_audit_log(audit);
    if (!sink) {
      log(LogLevel::kError, "cannot open audit log " + flags.audit + ": " + sink.error().message());
      return 1;
    }
    options.audit = std::move(sink).value();
  }

#ifdef RELAYCORE_WITH_REDIS
  if (!flags.redis.empty()) {
    RedisOptions redis;
    redis.url = flags.redis;
    redis.limits = options.limits;
    Result<std::shared_ptr<PubSub>> pubsub = new_redis_pubsub(std::move(redis));
    if (!pubsub) {
      log(LogLevel::kError, "--redis " + flags.redis + ": " + pubsub.error().message());
      return 1;
    }
    options.pubsub = std::move(pubsub).value();
  }
#endif

#ifdef RELAYCORE_WITH_POSTGRES
  if (!flags.postgres.empty()) {
    PostgresOptions postgres;
    postgres.conninfo = flags.postgres;
    Result<std::shared_ptr<Storage>> storage = new_postgres_storage(std::move(postgres));
    if (!storage) {
      // The conninfo may hold a password, so it is not printed.
      log(LogLevel::kError, "--postgres: " + storage.error().message());
      return 1;
    }
    options.storage = std::move(storage).value();
  }
#endif
  const std::string storage_name = flags.postgres.empty() ? flags.db : "PostgreSQL";

  websocket::ServerOptions server_options;
  server_options.host = flags.host;
  server_options.port = flags.port;
  server_options.threads = flags.threads;
  server_options.max_message_bytes = options.limits.max_message_bytes;

  // The relay URL is known only once the port is bound (port 0), but Options are fixed at open:
  // use the requested one, which is right unless the port was 0 and --relay-url was not given.
  std::string url = "ws://" + flags.host + ":" + std::to_string(flags.port);
  options.relay_url = flags.relay_url.empty() ? url : flags.relay_url;
  const std::string relay_url = options.relay_url;
  const std::size_t readers = options.reader_threads;

  Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(options));
  if (!relay) {
    log(LogLevel::kError, "cannot open " + storage_name + ": " + relay.error().message());
    return 1;
  }
  auto handler = std::make_shared<RelayHandler>(*relay.value());
  Result<std::unique_ptr<websocket::Server>> server =
      websocket::Server::start(server_options, handler);
  if (!server) {
    log(LogLevel::kError, "cannot listen on " + flags.host + ":" + std::to_string(flags.port) +
                              ": " + server.error().message());
    return 1;
  }
  const std::string listening = "ws://" + flags.host + ":" + std::to_string(server.value()->port());
  std::printf("relaycore-relay listening on %s (storage: %s%s%s)\n", listening.c_str(),
              storage_name.c_str(), flags.audit.empty() ? "" : ", audit: ", flags.audit.c_str());
  std::fflush(stdout);
  log(LogLevel::kInfo, "listening on " + listening + "; relay URL " + relay_url +
                           (flags.auth ? "; NIP-42 AUTH on connect" : ""));
  log(LogLevel::kInfo,
      "storage: " + (flags.postgres.empty() ? "SQLite " + flags.db : storage_name) +
          "; audit log: " + (flags.audit.empty() ? "none" : flags.audit) +
          "; other nodes: " + (flags.redis.empty() ? "none" : "Redis " + flags.redis));
  log(LogLevel::kInfo, "threads: " + std::to_string(flags.threads) + " WebSocket I/O, " +
                           std::to_string(readers) +
                           " query; verification on all cores but one; dispatch " +
                           (flags.dispatch == DispatchMode::kInline ? "inline" : "deferred"));

  int received = 0;
  sigwait(&signals, &received);
  log(LogLevel::kInfo, std::string(received == SIGINT ? "SIGINT" : "SIGTERM") + ", draining");
  // Drain first, so every pending EVENT gets its OK on a still-open connection; then close.
  Status drained = relay.value()->shutdown();
  server.value()->stop();
  if (!drained) {
    log(LogLevel::kError, "shutdown: " + drained.message());
    return 1;
  }
  log(LogLevel::kInfo, "stopped");
  return 0;
}
