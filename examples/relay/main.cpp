// relaycore-relay: a complete Nostr relay made of relaycore and its WebSocket transport, on the
// embedded SQLite default. This is what a newcomer runs first.
#include <signal.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../common/db_lock.hpp"
#include "config.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/stats.hpp"
#include "relaycore/websocket/server.hpp"
#include "status_page.hpp"
#ifdef RELAYCORE_WITH_POSTGRES
#include "relaycore/postgres.hpp"
#endif
#ifdef RELAYCORE_WITH_REDIS
#include "relaycore/redis.hpp"
#endif

using namespace relaycore;
using relaycore::relay_example::Config;
using relaycore::relay_example::config_path_of;
using relaycore::relay_example::load_config;
using relaycore::relay_example::setting_infos;
using relaycore::relay_example::SettingInfo;

namespace {

constexpr const char* kUsage =
    "usage: relaycore-relay [options]\n"
    "\n"
    "  --listen HOST:PORT   address to listen on (default 127.0.0.1:7777; port 0 picks one)\n"
    "  --db PATH            SQLite database (default ./relaycore.db)\n"
    "  --event-cache N      events kept parsed in memory by id for reads (default 100000;\n"
    "                       0 turns the cache off)\n"
    "  --audit PATH         keep a hash-chained audit log in this SQLite file\n"
    "  --threads N          WebSocket I/O threads (default 2); verification uses all cores\n"
    "                       but one\n"
    "  --auth               send a NIP-42 AUTH challenge on connect\n"
    "  --relay-url URL      the URL AUTH events must name (default ws://HOST:PORT)\n"
    "  --dispatch MODE      deferred (default: fan-out after the OK) or inline (before it)\n"
    "  --commit-delay-us N  hold a group commit open up to N microseconds for more events\n"
    "                       while other clients write too: less CPU and disk per event,\n"
    "                       later OKs (default 0)\n"
    "  --max-frame-bytes N  close a WebSocket message over N bytes with 1009 (default 1048576);\n"
    "                       one over the 131072-byte message limit but within N is refused\n"
    "                       with OK false or a NOTICE and the connection stays open\n"
    "  --postgres CONNINFO  store events in PostgreSQL instead of --db (a libpq conninfo\n"
    "                       or postgresql:// URI); nodes sharing one database share storage\n"
    "  --redis URL          carry live events to other nodes over Redis (redis://HOST:PORT[/DB])\n"
    "  --permessage-deflate on|off\n"
    "                       agree to WebSocket compression (RFC 7692) when a client offers\n"
    "                       it (default on)\n"
    "  --log-level LEVEL    debug, info (default), warn or error: the least severe lines\n"
    "                       written to stderr (startup at info, failures at warn and error)\n"
    "  --config FILE        read settings from a TOML file (docs/operations.md); flags override\n"
    "                       it, and SIGHUP reads it again\n"
    "  --help               show this help\n"
    "\n"
    "isolation between clients (see docs/limits.md):\n"
    "  --readers N          threads serving REQ and COUNT (default 2); expensive queries use\n"
    "                       at most N-1 of them, so cheap ones always find one free\n"
    "  --query-slice-ms N   a query yields to other clients' after N ms (default 10)\n"
    "  --max-outbound-bytes N\n"
    "                       bytes queued for one connection before it is closed as a slow\n"
    "                       consumer (default 4194304); history pauses at half of it\n"
    "  --slow-reader-timeout-ms N\n"
    "                       close a connection whose history has waited N ms for it to\n"
    "                       read (default 10000)\n"
    "  --max-queued-queries N\n"
    "                       REQ and COUNT jobs one connection may have waiting (default 64)\n"
    "\n"
    "NIP-77 negentropy sync (see docs/sync.md):\n"
    "  --neg-max-sessions N sync sessions one connection may hold open (default 4); 0 turns\n"
    "                       NIP-77 off and takes 77 out of the NIP-11 document\n"
    "  --neg-max-records N  most events one sync may cover; a larger filter gets NEG-ERR\n"
    "                       \"blocked: ...\" (default 1000000)\n"
    "  --neg-frame-bytes N  largest negentropy message sent, before hex (default 60000)\n"
    "  --neg-idle-ms N      close a sync session idle for N ms with NEG-ERR \"closed: ...\"\n"
    "                       (default 60000)\n"
    "\n"
    "rate limits (see docs/limits.md); RATE is N/s, N/m, N/h, N (per second) or off:\n"
    "  --event-rate RATE    EVENTs per client address (default 20/s)\n"
    "  --event-burst N      EVENTs an address may send at once (default 100)\n"
    "  --req-rate RATE      REQs per client address (default 20/s)\n"
    "  --req-burst N        REQs an address may send at once (default 100)\n"
    "  --count-rate RATE    COUNTs per client address (default 5/s)\n"
    "  --count-burst N      COUNTs an address may send at once (default 20)\n"
    "  --pubkey-event-rate RATE, --pubkey-event-burst N\n"
    "  --pubkey-req-rate RATE, --pubkey-req-burst N\n"
    "  --pubkey-count-rate RATE, --pubkey-count-burst N\n"
    "                       the same per NIP-42 authenticated pubkey, on top of the per\n"
    "                       address limits (default off; burst: one second's worth)\n"
    "  --conns-per-ip N     open connections per client address; 0: no cap (default 100)\n"
    "  --exempt-ip ADDR     never limit this address or prefix (203.0.113.7, 10.0.0.0/8);\n"
    "                       repeatable. Loopback is exempt unless --limit-loopback\n"
    "  --exempt-pubkey HEX  never limit a client authenticated as this pubkey; repeatable\n"
    "  --limit-loopback     limit loopback clients too\n"
    "  --trusted-proxy ADDR a reverse proxy (address or prefix) whose forwarding header\n"
    "                       names the client: its clients are limited by their own\n"
    "                       addresses; repeatable (default none)\n"
    "  --forwarded-header NAME\n"
    "                       the header the proxies set: X-Forwarded-For (default) or\n"
    "                       X-Real-IP; \"\" reads none\n"
    "  --no-rate-limits     turn every limit off; flags after it turn single ones back on\n"
    "IPv6 clients are counted by /64. Over a limit, an EVENT gets OK false, a REQ or COUNT\n"
    "CLOSED, and a connection a NOTICE before it is closed, each with \"rate-limited: ...\".\n";

[[noreturn]] void exit_with_errors(const std::vector<std::string>& errors, bool usage) {
  for (const std::string& e : errors) std::fprintf(stderr, "relaycore-relay: %s\n", e.c_str());
  if (usage) std::fprintf(stderr, "\n%s", kUsage);
  std::exit(2);
}

// The config file and flags, or exit 2 with every problem found.
Config load_or_exit(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> errors;
  const std::string path = config_path_of(args, errors);
  bool help = false;
  Config config = load_config(path, args, errors, help);
  if (help) {
    std::fputs(kUsage, stdout);
    std::exit(0);
  }
  // Mistakes on the command line come with the usage; those in the file do not.
  const bool in_file = std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
    return !path.empty() && e.rfind(path + ":", 0) == 0;
  });
  if (!errors.empty()) exit_with_errors(errors, !in_file);
  return config;
}

// Serves WebSocket sessions from the relay, and on plain HTTP the NIP-11 document, metrics and
// the status page.
class RelayHandler final : public websocket::Handler {
 public:
  explicit RelayHandler(Relay& relay) : relay_(relay), status_page_(relay) {}

  // The server whose counters /metrics adds to the relay's, once it has started; requests
  // served before then show the relay's alone.
  void set_server(const websocket::Server* server) { server_.store(server); }

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
    if (auto page = status_page_.serve(request)) return page;
    std::string_view target = request.target;
    if (target == "/metrics") {
      r.content_type = "text/plain; version=0.0.4";
      r.body = prometheus_text(relay_.stats());
      if (const websocket::Server* server = server_.load()) {
        r.body += websocket::prometheus_text(server->stats());
      }
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
  examples::StatusPage status_page_;
  std::atomic<const websocket::Server*> server_{nullptr};
};

// SIGHUP: reads the config file and flags again and applies what a running relay can change;
// the rest is logged as waiting for a restart. A file with errors changes nothing.
void reload(Relay& relay, Config& current, int argc, char** argv,
            const std::function<void(LogLevel, const std::string&)>& log) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> errors;
  const std::string path = config_path_of(args, errors);
  if (path.empty()) {
    log(LogLevel::kWarn, "SIGHUP: no --config file to read again");
    return;
  }
  bool help = false;
  Config next = load_config(path, args, errors, help);
  if (!errors.empty()) {
    for (const std::string& e : errors) log(LogLevel::kError, "SIGHUP: " + e);
    log(LogLevel::kError, "SIGHUP: " + path + " not applied");
    return;
  }
  std::vector<std::string> applied;
  for (const SettingInfo& s : setting_infos()) {
    auto was = current.given.find(s.name);
    auto now = next.given.find(s.name);
    const bool had = was != current.given.end();
    const bool has = now != next.given.end();
    if (had == has && (!had || was->second == now->second)) continue;
    if (s.live) {
      applied.push_back(s.name);
    } else {
      log(LogLevel::kWarn,
          "SIGHUP: " + s.name + " changed; it takes effect when the relay is restarted");
    }
  }
  next.options.logger = current.options.logger;
  if (Status st = relay.reconfigure(next.options); !st) {
    log(LogLevel::kError, "SIGHUP: " + st.message() + "; " + path + " not applied");
    return;
  }
  // What is not applied stays as the relay has it, so a later reload compares against that.
  for (const SettingInfo& s : setting_infos()) {
    if (s.live) continue;
    if (auto it = current.given.find(s.name); it != current.given.end()) {
      next.given[s.name] = it->second;
    } else {
      next.given.erase(s.name);
    }
  }
  current.given = std::move(next.given);
  log(LogLevel::kInfo,
      "SIGHUP: reloaded " + path + "; changed: " +
          (applied.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(applied, ", "))));
}

}  // namespace

int main(int argc, char** argv) {
  Config config = load_or_exit(argc, argv);
  const bool sqlite = config.postgres.empty();
  const std::string db = config.options.sqlite.path;

  // Signals are taken by sigwait() below; every thread started after this inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // One logger for the relay's lines and relaycore's own. stdout carries only the "listening"
  // line that scripts wait for.
  std::shared_ptr<Logger> logger = new_stderr_logger(config.options.log_level);
  auto log = [&logger](LogLevel level, const std::string& line) {
    logger->log(level, "relaycore-relay: " + line);
  };

  // Held until exit: relaycore-admin refuses to write to a database a relay is running on.
  examples::DbLock db_lock;
  if (sqlite) {
    Result<examples::DbLock> lock = examples::DbLock::acquire(db);
    if (!lock) {
      log(LogLevel::kError, "cannot open " + db + ": " + std::string(lock.error().detail()));
      return 1;
    }
    db_lock = std::move(lock).value();
  }

  Options options = config.options;
  options.logger = logger;
  config.options.logger = logger;
  if (!config.audit.empty()) {
    SqliteAuditOptions audit;
    audit.path = config.audit;
    Result<std::shared_ptr<AuditSink>> sink = new_sqlite_audit_log(audit);
    if (!sink) {
      log(LogLevel::kError,
          "cannot open audit log " + config.audit + ": " + sink.error().message());
      return 1;
    }
    options.audit = std::move(sink).value();
  }

#ifdef RELAYCORE_WITH_REDIS
  if (!config.redis.empty()) {
    RedisOptions redis;
    redis.url = config.redis;
    redis.limits = options.limits;
    Result<std::shared_ptr<PubSub>> pubsub = new_redis_pubsub(std::move(redis));
    if (!pubsub) {
      log(LogLevel::kError, "--redis " + config.redis + ": " + pubsub.error().message());
      return 1;
    }
    options.pubsub = std::move(pubsub).value();
  }
#endif

#ifdef RELAYCORE_WITH_POSTGRES
  if (!config.postgres.empty()) {
    PostgresOptions postgres;
    postgres.conninfo = config.postgres;
    Result<std::shared_ptr<Storage>> storage = new_postgres_storage(std::move(postgres));
    if (!storage) {
      // The conninfo may hold a password, so it is not printed.
      log(LogLevel::kError, "--postgres: " + storage.error().message());
      return 1;
    }
    options.storage = std::move(storage).value();
  }
#endif
  const std::string storage_name = sqlite ? db : "PostgreSQL";

  websocket::ServerOptions server_options;
  server_options.host = config.host;
  server_options.port = config.port;
  server_options.threads = config.threads;
  server_options.max_message_bytes = config.max_frame_bytes;
  server_options.permessage_deflate = config.permessage_deflate;
  server_options.forwarded_header = config.forwarded_header;

  // The relay URL is known only once the port is bound (port 0), but Options are fixed at open:
  // use the requested one, which is right unless the port was 0 and --relay-url was not given.
  std::string url = "ws://" + config.host + ":" + std::to_string(config.port);
  if (options.relay_url.empty()) options.relay_url = url;
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
    log(LogLevel::kError, "cannot listen on " + config.host + ":" + std::to_string(config.port) +
                              ": " + server.error().message());
    return 1;
  }
  handler->set_server(server.value().get());
  const std::string listening =
      "ws://" + config.host + ":" + std::to_string(server.value()->port());
  std::printf("relaycore-relay listening on %s (storage: %s%s%s)\n", listening.c_str(),
              storage_name.c_str(), config.audit.empty() ? "" : ", audit: ", config.audit.c_str());
  std::fflush(stdout);
  log(LogLevel::kInfo, "listening on " + listening + "; relay URL " + relay_url +
                           (config.options.auth_on_connect ? "; NIP-42 AUTH on connect" : ""));
  log(LogLevel::kInfo,
      "storage: " + (sqlite ? "SQLite " + db : storage_name) +
          "; audit log: " + (config.audit.empty() ? "none" : config.audit) +
          "; other nodes: " + (config.redis.empty() ? "none" : "Redis " + config.redis));
  log(LogLevel::kInfo,
      "threads: " + std::to_string(config.threads) + " WebSocket I/O, " + std::to_string(readers) +
          " query; verification on all cores but one; dispatch " +
          (config.options.dispatch == DispatchMode::kInline ? "inline" : "deferred"));

  int received = 0;
  for (;;) {
    sigwait(&signals, &received);
    if (received != SIGHUP) break;
    reload(*relay.value(), config, argc, argv, log);
  }
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
