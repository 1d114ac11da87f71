// relaycore-relay: a complete Nostr relay made of relaycore and its WebSocket transport, on the
// embedded SQLite default. This is what a newcomer runs first.
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "relaycore/hex.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/rate_limit.hpp"
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
    "  --limit-loopback     limit loopback clients too (leave it off behind a reverse proxy\n"
    "                       on the same machine: every client has the proxy's address)\n"
    "  --no-rate-limits     turn every limit off; flags after it turn single ones back on\n"
    "IPv6 clients are counted by /64. Over a limit, an EVENT gets OK false, a REQ or COUNT\n"
    "CLOSED, and a connection a NOTICE before it is closed, each with \"rate-limited: ...\".\n";

struct Flags {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7777;
  std::string db = "./relaycore.db";
  std::string audit;
  std::size_t threads = 2;
  bool auth = false;
  std::string relay_url;
  DispatchMode dispatch = DispatchMode::kDeferred;
  std::size_t max_frame_bytes = websocket::ServerOptions().max_message_bytes;
  bool permessage_deflate = websocket::ServerOptions().permessage_deflate;
  std::string postgres;
  std::string redis;
  RateLimits rate_limits;
  // Isolation between clients: Options fields, defaults from Options.
  std::size_t readers = Options().reader_threads;
  std::uint32_t query_slice_micros = Options().query_slice_micros;
  std::size_t max_outbound_bytes = Options().max_outbound_bytes;
  std::uint32_t slow_reader_timeout_ms = Options().slow_reader_timeout_ms;
  std::size_t max_queued_queries = Options().max_queued_queries;
  LogLevel log_level = LogLevel::kInfo;
};

// A flag "--<name>-rate RATE" or "--<name>-burst N", and the bucket it sets.
struct LimitFlag {
  std::string_view name;
  VerbLimits RateLimits::*scope;
  RateLimit VerbLimits::*verb;
};

constexpr LimitFlag kLimitFlags[] = {
    {"event", &RateLimits::per_ip, &VerbLimits::event},
    {"req", &RateLimits::per_ip, &VerbLimits::req},
    {"count", &RateLimits::per_ip, &VerbLimits::count},
    {"pubkey-event", &RateLimits::per_pubkey, &VerbLimits::event},
    {"pubkey-req", &RateLimits::per_pubkey, &VerbLimits::req},
    {"pubkey-count", &RateLimits::per_pubkey, &VerbLimits::count},
};

// The bucket a rate or burst flag sets, or null for any other flag; `burst` says which.
RateLimit* limit_flag(std::string_view arg, RateLimits& limits, bool& burst) {
  for (const LimitFlag& f : kLimitFlags) {
    for (std::string_view suffix : {std::string_view("-rate"), std::string_view("-burst")}) {
      if (arg.size() == 2 + f.name.size() + suffix.size() && arg.substr(0, 2) == "--" &&
          arg.substr(2, f.name.size()) == f.name && arg.substr(2 + f.name.size()) == suffix) {
        burst = suffix == "-burst";
        return &((limits.*(f.scope)).*(f.verb));
      }
    }
  }
  return nullptr;
}

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
  // The default exemptions (loopback) go back in at the end, unless --limit-loopback.
  f.rate_limits.exempt_ips.clear();
  bool limit_loopback = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
      return argv[++i];
    };
    // The flag's value as a whole number from `min` to `max`.
    auto number = [&](unsigned long min, unsigned long max) -> unsigned long {
      std::string v = value();
      unsigned long n = 0;
      if (!parse_number(v, max, n) || n < min) {
        usage_error(std::string(arg) + " wants " + std::to_string(min) + " to " +
                    std::to_string(max) + ", got \"" + v + "\"");
      }
      return n;
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
      f.threads = number(1, 256);
    } else if (arg == "--readers") {
      f.readers = number(1, 256);
    } else if (arg == "--query-slice-ms") {
      f.query_slice_micros = static_cast<std::uint32_t>(number(1, 60000) * 1000);
    } else if (arg == "--max-outbound-bytes") {
      f.max_outbound_bytes = number(64 * 1024, 1ul << 30);
    } else if (arg == "--slow-reader-timeout-ms") {
      f.slow_reader_timeout_ms = static_cast<std::uint32_t>(number(1, 3600000));
    } else if (arg == "--max-queued-queries") {
      f.max_queued_queries = number(1, 1u << 20);
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
    } else if (arg == "--max-frame-bytes") {
      std::string v = value();
      unsigned long n = 0;
      if (!parse_number(v, 1ul << 30, n) || n < Limits().max_message_bytes) {
        usage_error("--max-frame-bytes wants " + std::to_string(Limits().max_message_bytes) +
                    " to " + std::to_string(1ul << 30) + ", got \"" + v + "\"");
      }
      f.max_frame_bytes = n;
    } else if (arg == "--permessage-deflate") {
      std::string v = value();
      if (v != "on" && v != "off") {
        usage_error("--permessage-deflate wants on or off, got \"" + v + "\"");
      }
      f.permessage_deflate = v == "on";
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
    } else if (bool burst = false; RateLimit* limit = limit_flag(arg, f.rate_limits, burst)) {
      std::string v = value();
      unsigned long n = 0;
      if (burst) {
        if (!parse_number(v, UINT32_MAX, n)) usage_error(std::string(arg) + " wants a count");
        limit->burst = static_cast<std::uint32_t>(n);
      } else {
        Result<double> rate = parse_rate(v);
        if (!rate) usage_error(std::string(arg) + ": " + rate.error().message());
        limit->per_second = *rate;
      }
    } else if (arg == "--conns-per-ip") {
      std::string v = value();
      unsigned long n = 0;
      if (!parse_number(v, UINT32_MAX, n)) usage_error("--conns-per-ip wants a count");
      f.rate_limits.max_connections_per_ip = static_cast<std::uint32_t>(n);
    } else if (arg == "--exempt-ip") {
      f.rate_limits.exempt_ips.push_back(value());
    } else if (arg == "--exempt-pubkey") {
      std::string v = value();
      Pubkey pk;
      if (!from_hex(v, pk)) usage_error("--exempt-pubkey wants 64 lowercase hex characters");
      f.rate_limits.exempt_pubkeys.push_back(pk);
    } else if (arg == "--limit-loopback") {
      limit_loopback = true;
    } else if (arg == "--no-rate-limits") {
      f.rate_limits.per_ip = VerbLimits();
      f.rate_limits.per_pubkey = VerbLimits();
      f.rate_limits.max_connections_per_ip = 0;
    } else {
      usage_error("unknown option \"" + std::string(arg) + "\"");
    }
  }
  if (!limit_loopback) {
    const std::vector<std::string> loopback = RateLimits().exempt_ips;
    f.rate_limits.exempt_ips.insert(f.rate_limits.exempt_ips.end(), loopback.begin(),
                                    loopback.end());
  }
  // Only an exempt address can be wrong by now. Relay::open would refuse it too, but as a
  // failure to open the database.
  if (Result<std::shared_ptr<RateLimiter>> limiter = new_rate_limiter(f.rate_limits); !limiter) {
    usage_error("--exempt-ip: " + limiter.error().message());
  }
  return f;
}

// Serves WebSocket sessions from the relay, and on plain HTTP the NIP-11 document, metrics and
// the status page.
class RelayHandler final : public websocket::Handler {
 public:
  explicit RelayHandler(Relay& relay) : relay_(relay), status_page_(relay) {}

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
  options.rate_limits = flags.rate_limits;
  options.reader_threads = flags.readers;
  options.query_slice_micros = flags.query_slice_micros;
  options.max_outbound_bytes = flags.max_outbound_bytes;
  options.slow_reader_timeout_ms = flags.slow_reader_timeout_ms;
  options.max_queued_queries = flags.max_queued_queries;
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
  server_options.max_message_bytes = flags.max_frame_bytes;
  server_options.permessage_deflate = flags.permessage_deflate;

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
