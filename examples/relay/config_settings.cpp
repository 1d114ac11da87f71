#include "config_settings.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "relaycore/hex.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/rate_limit.hpp"
#include "relaycore/retention.hpp"

namespace relaycore::relay_example {
namespace {

bool parse_number(std::string_view s, unsigned long max, unsigned long& out) {
  if (s.empty()) return false;
  unsigned long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<unsigned long>(c - '0');
    if (v > (max - digit) / 10) return false;  // v * 10 + digit > max, without overflow
    v = v * 10 + digit;
  }
  out = v;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// "1", "30000-39999" or a comma-separated list of them; "" when it is one, else what is wrong.
std::string parse_kinds(std::string_view s, std::vector<KindRange>& out) {
  while (!s.empty()) {
    const std::size_t comma = s.find(',');
    const std::string_view item = trim(s.substr(0, comma));
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    const std::size_t dash = item.find('-');
    unsigned long first = 0;
    unsigned long last = 0;
    if (!parse_number(trim(item.substr(0, dash)), 65535, first) ||
        !parse_number(dash == std::string_view::npos ? trim(item) : trim(item.substr(dash + 1)),
                      65535, last)) {
      return "\"" + std::string(item) + "\" is not a kind (0 to 65535) or a range of them";
    }
    if (first > last) return "kinds " + std::string(item) + " run backwards";
    out.push_back({static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)});
  }
  if (out.empty()) return "names no kinds";
  return "";
}

// "30d", "12h", "90m" or "3600s", in seconds; false when it is none of those.
bool parse_duration(std::string_view s, std::int64_t& seconds) {
  if (s.empty()) return false;
  unsigned long unit = 0;
  switch (s.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return false;
  }
  unsigned long n = 0;
  if (!parse_number(trim(s.substr(0, s.size() - 1)), 100ul * 365 * 86400 / unit, n)) return false;
  seconds = static_cast<std::int64_t>(n * unit);
  return true;
}

// A retention rule written "KINDS: VALUE": its kinds, and the text after the colon; "" when it
// has that shape, else what is wrong.
std::string parse_rule(std::string_view v, std::string_view example, std::vector<KindRange>& kinds,
                       std::string_view& value) {
  const std::size_t colon = v.find(':');
  if (colon == std::string_view::npos) {
    return "wants \"KINDS: " + std::string(example) + "\", got \"" + std::string(v) + "\"";
  }
  value = trim(v.substr(colon + 1));
  return parse_kinds(v.substr(0, colon), kinds);
}

// A whole number from `min` to `max`, stored times `scale` in the field `field` returns.
template <typename T>
Apply number(T& (*field)(Config&), unsigned long min, unsigned long max, unsigned long scale = 1) {
  return [=](Config& c, std::string_view v) -> std::string {
    unsigned long n = 0;
    if (!parse_number(v, max, n) || n < min) {
      return "wants " + std::to_string(min) + " to " + std::to_string(max) + ", got \"" +
             std::string(v) + "\"";
    }
    field(c) = static_cast<T>(n * scale);
    return "";
  };
}

Apply text(std::string& (*field)(Config&)) {
  return [=](Config& c, std::string_view v) -> std::string {
    field(c) = std::string(v);
    return "";
  };
}

// An address or prefix added to a list of RateLimits; the limiter is the one that knows a
// prefix when it sees one.
Apply prefix_list(std::vector<std::string>& (*field)(RateLimits&)) {
  return [=](Config& c, std::string_view v) -> std::string {
    RateLimits probe;
    field(probe) = {std::string(v)};
    if (Result<std::shared_ptr<RateLimiter>> r = new_rate_limiter(probe); !r) {
      return std::string(r.error().detail());
    }
    field(c.options.rate_limits).push_back(std::string(v));
    return "";
  };
}

Apply boolean(bool& (*field)(Config&)) {
  return [=](Config& c, std::string_view v) -> std::string {
    field(c) = v == "true";
    return "";
  };
}

// A "--<name>-rate RATE" and "--<name>-burst N" pair, and the bucket it sets.
struct LimitName {
  std::string_view name;
  VerbLimits RateLimits::*scope;
  RateLimit VerbLimits::*verb;
};

constexpr LimitName kLimitNames[] = {
    {"event", &RateLimits::per_ip, &VerbLimits::event},
    {"req", &RateLimits::per_ip, &VerbLimits::req},
    {"count", &RateLimits::per_ip, &VerbLimits::count},
    {"pubkey-event", &RateLimits::per_pubkey, &VerbLimits::event},
    {"pubkey-req", &RateLimits::per_pubkey, &VerbLimits::req},
    {"pubkey-count", &RateLimits::per_pubkey, &VerbLimits::count},
};

// A Limits field in [limits]: a whole number up to 2^30, or up to UINT32_MAX for max-limit.
#define RELAY_LIMIT(key, member, min)                                                            \
  Setting {                                                                                      \
    {"limits", key, ValueKind::kNumber, false, true},                                            \
        number<decltype(Limits::member)>(                                                        \
            [](Config& c) -> decltype(Limits::member)& { return c.options.limits.member; }, min, \
            1ul << 30)                                                                           \
  }

std::vector<Setting> build_settings() {
  std::vector<Setting> s = {
      {{"", "listen", ValueKind::kText, true, false},
       [](Config& c, std::string_view v) -> std::string {
         const std::size_t colon = v.rfind(':');
         unsigned long port = 0;
         if (colon == std::string_view::npos || colon == 0 ||
             !parse_number(v.substr(colon + 1), 65535, port)) {
           return "wants HOST:PORT, got \"" + std::string(v) + "\"";
         }
         c.host = std::string(v.substr(0, colon));
         c.port = static_cast<std::uint16_t>(port);
         return "";
       }},
      {{"", "db", ValueKind::kText, true, false},
       text([](Config& c) -> std::string& { return c.options.sqlite.path; })},
      {{"", "audit", ValueKind::kText, true, false},
       text([](Config& c) -> std::string& { return c.audit; })},
      {{"", "threads", ValueKind::kNumber, true, false},
       number<std::size_t>([](Config& c) -> std::size_t& { return c.threads; }, 1, 256)},
      {{"", "readers", ValueKind::kNumber, true, false},
       number<std::size_t>([](Config& c) -> std::size_t& { return c.options.reader_threads; }, 1,
                           256)},
      {{"", "auth", ValueKind::kBool, true, true},
       boolean([](Config& c) -> bool& { return c.options.auth_on_connect; })},
      {{"", "relay-url", ValueKind::kText, true, false},
       text([](Config& c) -> std::string& { return c.options.relay_url; })},
      {{"", "dispatch", ValueKind::kText, true, false},
       [](Config& c, std::string_view v) -> std::string {
         if (v == "deferred") {
           c.options.dispatch = DispatchMode::kDeferred;
         } else if (v == "inline") {
           c.options.dispatch = DispatchMode::kInline;
         } else {
           return "wants deferred or inline, got \"" + std::string(v) + "\"";
         }
         return "";
       }},
      {{"", "commit-delay-us", ValueKind::kNumber, true, false},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.commit_delay_micros; }, 0,
           kMaxCommitDelayMicros)},
      {{"", "postgres", ValueKind::kText, true, false},
       [](Config& c, std::string_view v) -> std::string {
         c.postgres = std::string(v);
         if (v.empty()) return "";
#ifndef RELAYCORE_WITH_POSTGRES
         return "this build has no PostgreSQL support (libpq was not found)";
#else
         return "";
#endif
       }},
      {{"", "redis", ValueKind::kText, true, false},
       [](Config& c, std::string_view v) -> std::string {
         c.redis = std::string(v);
         if (v.empty()) return "";
#ifndef RELAYCORE_WITH_REDIS
         return "this build has no Redis support (hiredis was not found)";
#else
         return "";
#endif
       }},
      {{"compression", "permessage-deflate", ValueKind::kText, true, false},
       [](Config& c, std::string_view v) -> std::string {
         if (v != "on" && v != "off") return "wants on or off, got \"" + std::string(v) + "\"";
         c.permessage_deflate = v == "on";
         return "";
       }},
      {{"", "log-level", ValueKind::kText, true, false},
       [](Config& c, std::string_view v) -> std::string {
         Result<LogLevel> level = parse_log_level(v);
         if (!level) return "wants debug, info, warn or error, got \"" + std::string(v) + "\"";
         c.options.log_level = *level;
         return "";
       }},

      // Sizes and isolation between clients (docs/limits.md).
      {{"limits", "max-frame-bytes", ValueKind::kNumber, true, false},
       number<std::size_t>([](Config& c) -> std::size_t& { return c.max_frame_bytes; }, 1024,
                           1ul << 30)},
      {{"limits", "query-slice-ms", ValueKind::kNumber, true, false},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.query_slice_micros; }, 1, 60000,
           1000)},
      {{"limits", "max-outbound-bytes", ValueKind::kNumber, true, false},
       number<std::size_t>([](Config& c) -> std::size_t& { return c.options.max_outbound_bytes; },
                           64 * 1024, 1ul << 30)},
      {{"limits", "slow-reader-timeout-ms", ValueKind::kNumber, true, false},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.slow_reader_timeout_ms; }, 1,
           3600000)},
      {{"limits", "max-queued-queries", ValueKind::kNumber, true, false},
       number<std::size_t>([](Config& c) -> std::size_t& { return c.options.max_queued_queries; },
                           1, 1u << 20)},
      {{"limits", "event-cache", ValueKind::kNumber, true, false},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.sqlite.event_cache_entries; }, 0,
           kMaxEventCacheEntries)},
      // NIP-77 sync sessions (docs/sync.md).
      {{"limits", "neg-max-sessions", ValueKind::kNumber, true, false},
       number<std::size_t>(
           [](Config& c) -> std::size_t& { return c.options.negentropy.max_sessions; }, 0, 1024)},
      {{"limits", "neg-max-records", ValueKind::kNumber, true, false},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.negentropy.max_records; }, 1,
           UINT32_MAX)},
      {{"limits", "neg-frame-bytes", ValueKind::kNumber, true, false},
       number<std::size_t>(
           [](Config& c) -> std::size_t& { return c.options.negentropy.frame_size_limit; }, 4096,
           1ul << 24)},
      {{"limits", "neg-idle-ms", ValueKind::kNumber, true, false},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.negentropy.idle_timeout_ms; }, 1,
           86400000)},
      RELAY_LIMIT("max-message-bytes", max_message_bytes, 1024),
      RELAY_LIMIT("max-event-bytes", max_event_bytes, 256),
      RELAY_LIMIT("max-event-tags", max_event_tags, 0),
      RELAY_LIMIT("max-tag-strings", max_tag_strings, 1),
      RELAY_LIMIT("max-tag-value-bytes", max_tag_value_bytes, 1),
      RELAY_LIMIT("max-content-bytes", max_content_bytes, 0),
      RELAY_LIMIT("max-json-depth", max_json_depth, 4),
      RELAY_LIMIT("max-subid-length", max_subid_length, 1),
      RELAY_LIMIT("max-filters", max_filters, 1),
      RELAY_LIMIT("max-filter-values", max_filter_values, 1),
      RELAY_LIMIT("max-filter-tags", max_filter_tags, 0),
      RELAY_LIMIT("max-search-bytes", max_search_bytes, 0),
      RELAY_LIMIT("max-limit", max_limit, 1),
      RELAY_LIMIT("max-subscriptions", max_subscriptions, 1),
      {{"limits", "max-future-seconds", ValueKind::kNumber, false, true},
       number<std::int64_t>([](Config& c) -> std::int64_t& { return c.options.max_future_seconds; },
                            0, 10ul * 365 * 86400)},

      // Rate limits (docs/limits.md). no-rate-limits comes first, so that in the file the
      // other keys of the section turn single limits back on, as flags after it do.
      {{"rate-limits", "no-rate-limits", ValueKind::kBool, true, true},
       [](Config& c, std::string_view v) -> std::string {
         if (v != "true") return "";
         c.options.rate_limits.per_ip = VerbLimits();
         c.options.rate_limits.per_pubkey = VerbLimits();
         c.options.rate_limits.max_connections_per_ip = 0;
         return "";
       }},
  };
  for (const LimitName& l : kLimitNames) {
    s.push_back({{"rate-limits", std::string(l.name) + "-rate", ValueKind::kRate, true, true},
                 [l](Config& c, std::string_view v) -> std::string {
                   Result<double> rate = parse_rate(v);
                   if (!rate) return std::string(rate.error().detail());
                   ((c.options.rate_limits.*(l.scope)).*(l.verb)).per_second = *rate;
                   return "";
                 }});
    s.push_back({{"rate-limits", std::string(l.name) + "-burst", ValueKind::kNumber, true, true},
                 [l](Config& c, std::string_view v) -> std::string {
                   unsigned long n = 0;
                   if (!parse_number(v, UINT32_MAX, n)) {
                     return "wants a count, got \"" + std::string(v) + "\"";
                   }
                   ((c.options.rate_limits.*(l.scope)).*(l.verb)).burst =
                       static_cast<std::uint32_t>(n);
                   return "";
                 }});
  }
  std::vector<Setting> rest = {
      {{"rate-limits", "conns-per-ip", ValueKind::kNumber, true, true},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.rate_limits.max_connections_per_ip; },
           0, UINT32_MAX)},
      {{"rate-limits", "exempt-ip", ValueKind::kList, true, true},
       prefix_list([](RateLimits& l) -> std::vector<std::string>& { return l.exempt_ips; })},
      {{"rate-limits", "exempt-pubkey", ValueKind::kList, true, true},
       [](Config& c, std::string_view v) -> std::string {
         Pubkey pk;
         if (!from_hex(v, pk)) return "wants 64 lowercase hex characters";
         c.options.rate_limits.exempt_pubkeys.push_back(pk);
         return "";
       }},
      {{"rate-limits", "limit-loopback", ValueKind::kBool, true, true},
       boolean([](Config& c) -> bool& { return c.limit_loopback; })},
      {{"rate-limits", "trusted-proxy", ValueKind::kList, true, true},
       prefix_list([](RateLimits& l) -> std::vector<std::string>& { return l.trusted_proxies; })},
      {{"rate-limits", "forwarded-header", ValueKind::kText, true, false},
       [](Config& c, std::string_view v) -> std::string {
         const bool name = std::all_of(v.begin(), v.end(), [](char ch) {
           return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
         });
         if (!name) return "wants a header name such as X-Forwarded-For, or \"\"";
         c.forwarded_header = std::string(v);
         return "";
       }},

      // The NIP-11 document.
      {{"info", "name", ValueKind::kText, false, true},
       text([](Config& c) -> std::string& { return c.options.info.name; })},
      {{"info", "description", ValueKind::kText, false, true},
       text([](Config& c) -> std::string& { return c.options.info.description; })},
      {{"info", "pubkey", ValueKind::kText, false, true},
       [](Config& c, std::string_view v) -> std::string {
         Pubkey pk;
         if (!v.empty() && !from_hex(v, pk)) return "wants 64 lowercase hex characters or \"\"";
         c.options.info.pubkey = std::string(v);
         return "";
       }},
      {{"info", "contact", ValueKind::kText, false, true},
       text([](Config& c) -> std::string& { return c.options.info.contact; })},
      {{"info", "icon", ValueKind::kText, false, true},
       text([](Config& c) -> std::string& { return c.options.info.icon; })},
      {{"info", "banner", ValueKind::kText, false, true},
       text([](Config& c) -> std::string& { return c.options.info.banner; })},
      {{"info", "posting-policy", ValueKind::kText, false, true},
       text([](Config& c) -> std::string& { return c.options.info.posting_policy; })},

      // Retention rules (docs/operations.md), all applied on SIGHUP.
      {{"retention", "max-age", ValueKind::kList, false, true},
       [](Config& c, std::string_view v) -> std::string {
         std::vector<KindRange> kinds;
         std::string_view age;
         if (std::string e = parse_rule(v, "AGE", kinds, age); !e.empty()) return e;
         std::int64_t seconds = 0;
         if (!parse_duration(age, seconds)) {
           return "wants an age such as 30d, 12h, 90m or 3600s, got \"" + std::string(age) + "\"";
         }
         for (const KindRange& k : kinds) c.options.retention.max_age.push_back({k, seconds});
         return "";
       }},
      {{"retention", "max-per-author", ValueKind::kList, false, true},
       [](Config& c, std::string_view v) -> std::string {
         MaxPerAuthorRule rule;
         std::string_view count;
         if (std::string e = parse_rule(v, "COUNT", rule.kinds, count); !e.empty()) return e;
         unsigned long n = 0;
         if (!parse_number(count, UINT32_MAX, n)) {
           return "wants a count of events, got \"" + std::string(count) + "\"";
         }
         rule.max_events = static_cast<std::uint32_t>(n);
         RetentionRules alone;
         alone.max_per_author = {rule};
         if (Status bad = validate_retention(alone); !bad) return std::string(bad.detail());
         c.options.retention.max_per_author.push_back(std::move(rule));
         return "";
       }},
      {{"retention", "max-bytes", ValueKind::kNumber, false, true},
       number<std::uint64_t>(
           [](Config& c) -> std::uint64_t& { return c.options.retention.max_bytes; }, 0,
           1ul << 60)},
      {{"retention", "batch-size", ValueKind::kNumber, false, true},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.retention.batch_size; }, 1,
           1u << 20)},
      {{"retention", "interval-seconds", ValueKind::kNumber, false, true},
       number<std::uint32_t>(
           [](Config& c) -> std::uint32_t& { return c.options.retention.interval_seconds; }, 1,
           86400)},
  };
  s.insert(s.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
  return s;
}

#undef RELAY_LIMIT

}  // namespace

const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = build_settings();
  return table;
}

}  // namespace relaycore::relay_example
