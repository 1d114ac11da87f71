#include "config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string_view>
#include <utility>

#include "relaycore/hex.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/rate_limit.hpp"
#include "relaycore/websocket/server.hpp"

namespace relaycore::relay_example {
namespace {

// Sets a value in the Config from its text; returns what is wrong with it, or "".
using Apply = std::function<std::string(Config&, std::string_view)>;

struct Setting {
  SettingInfo info;
  Apply apply;
};

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
       [](Config& c, std::string_view v) -> std::string {
         // The limiter is the one that knows an address prefix when it sees one.
         RateLimits probe;
         probe.exempt_ips = {std::string(v)};
         if (Result<std::shared_ptr<RateLimiter>> r = new_rate_limiter(probe); !r) {
           return std::string(r.error().detail());
         }
         c.options.rate_limits.exempt_ips.push_back(std::string(v));
         return "";
       }},
      {{"rate-limits", "exempt-pubkey", ValueKind::kList, true, true},
       [](Config& c, std::string_view v) -> std::string {
         Pubkey pk;
         if (!from_hex(v, pk)) return "wants 64 lowercase hex characters";
         c.options.rate_limits.exempt_pubkeys.push_back(pk);
         return "";
       }},
      {{"rate-limits", "limit-loopback", ValueKind::kBool, true, true},
       boolean([](Config& c) -> bool& { return c.limit_loopback; })},

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
  };
  s.insert(s.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
  return s;
}

#undef RELAY_LIMIT

const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = build_settings();
  return table;
}

const Setting* find_setting(std::string_view section, std::string_view name) {
  for (const Setting& s : settings()) {
    if (s.info.section == section && s.info.name == name) return &s;
  }
  return nullptr;
}

std::string key_path(const std::string& section, const std::string& name) {
  return section.empty() ? name : section + "." + name;
}

// The values a TOML node holds, as text, or an error saying what the setting wants.
std::string node_texts(const toml::node& node, ValueKind kind, std::vector<std::string>& out) {
  switch (kind) {
    case ValueKind::kText:
      if (const auto* v = node.as_string()) return out.push_back(v->get()), "";
      return "wants a string";
    case ValueKind::kNumber:
      if (const auto* v = node.as_integer(); v && v->get() >= 0) {
        return out.push_back(std::to_string(v->get())), "";
      }
      return "wants a whole number of at least 0";
    case ValueKind::kRate:
      if (const auto* v = node.as_string()) return out.push_back(v->get()), "";
      if (const auto* v = node.as_integer()) return out.push_back(std::to_string(v->get())), "";
      if (const auto* v = node.as_floating_point()) {
        return out.push_back(std::to_string(v->get())), "";
      }
      return "wants a rate: \"20/s\", \"1200/m\", \"100/h\", \"off\" or a number per second";
    case ValueKind::kBool:
      if (const auto* v = node.as_boolean()) return out.push_back(v->get() ? "true" : "false"), "";
      return "wants true or false";
    case ValueKind::kList:
      if (const auto* a = node.as_array()) {
        for (const toml::node& element : *a) {
          const auto* v = element.as_string();
          if (!v) return "wants an array of strings";
          out.push_back(v->get());
        }
        return "";
      }
      return "wants an array of strings";
  }
  return "has an unknown kind";
}

// Applies one setting's values; lists start again from empty.
void apply_values(Config& c, const Setting& s, const std::vector<std::string>& values,
                  const std::string& where, std::vector<std::string>& errors) {
  if (s.info.kind == ValueKind::kList) {
    if (s.info.name == "exempt-ip") c.options.rate_limits.exempt_ips.clear();
    if (s.info.name == "exempt-pubkey") c.options.rate_limits.exempt_pubkeys.clear();
  }
  for (const std::string& v : values) {
    if (std::string e = s.apply(c, v); !e.empty()) {
      errors.push_back(where + ": " + key_path(s.info.section, s.info.name) + ": " + e);
    }
  }
}

void read_file(Config& c, const std::string& path, std::vector<std::string>& errors) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const std::size_t line = e.source().begin.line;
    errors.push_back(path + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " +
                     std::string(e.description()));
    return;
  }
  auto at = [&](const toml::node& n) { return path + ":" + std::to_string(n.source().begin.line); };
  // Unknown keys first, each with its line; a key in the wrong section says where it belongs.
  auto check_keys = [&](const toml::table& table, const std::string& section) {
    for (const auto& [key, node] : table) {
      const std::string name(key.str());
      if (section.empty() && node.is_table()) {
        const auto& sections = config_sections();
        if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
          errors.push_back(at(node) + ": unknown section [" + name + "]");
        }
        continue;
      }
      if (find_setting(section, name)) continue;
      std::string hint;
      for (const Setting& s : settings()) {
        if (s.info.name == name) {
          hint = s.info.section.empty() ? " (it belongs at the top, before any section)"
                                        : " (it belongs in [" + s.info.section + "])";
        }
      }
      errors.push_back(at(node) + ": unknown key \"" + key_path(section, name) + "\"" + hint);
    }
  };
  check_keys(root, "");
  for (const std::string& section : config_sections()) {
    const toml::node* node = root.get(section);
    if (node == nullptr) continue;
    if (const toml::table* table = node->as_table()) {
      check_keys(*table, section);
    } else {
      errors.push_back(at(*node) + ": \"" + section + "\" must be a section ([" + section + "])");
    }
  }
  // Then the values, in the table's order.
  for (const Setting& s : settings()) {
    const toml::table* table = s.info.section.empty() ? &root : root[s.info.section].as_table();
    const toml::node* node = table ? table->get(s.info.name) : nullptr;
    if (node == nullptr) continue;
    std::vector<std::string> values;
    if (std::string e = node_texts(*node, s.info.kind, values); !e.empty()) {
      errors.push_back(at(*node) + ": " + key_path(s.info.section, s.info.name) + ": " + e);
      continue;
    }
    apply_values(c, s, values, at(*node), errors);
    c.given[s.info.name] = values;
    c.where[s.info.name] = at(*node);
  }
}

void read_flags(Config& c, const std::vector<std::string>& args, std::vector<std::string>& errors,
                bool& help) {
  std::set<std::string> listed;  // list flags seen: the first replaces the file's list
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      continue;
    }
    if (arg == "--config") {
      ++i;
      continue;
    }
    const Setting* setting = nullptr;
    if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      for (const Setting& s : settings()) {
        if (s.info.flag && s.info.name == std::string_view(arg).substr(2)) setting = &s;
      }
    }
    if (!setting) {
      errors.push_back("unknown option \"" + arg + "\"");
      continue;
    }
    const std::string& name = setting->info.name;
    std::string value = "true";
    if (setting->info.kind != ValueKind::kBool) {
      if (i + 1 >= args.size()) {
        errors.push_back(arg + " needs a value");
        continue;
      }
      value = args[++i];
    }
    std::vector<std::string>& given = c.given[name];
    if (setting->info.kind == ValueKind::kList && listed.insert(name).second) {
      given.clear();
      apply_values(c, *setting, {}, arg, errors);
    }
    given.push_back(value);
    // Flag errors name the flag itself.
    if (std::string e = setting->apply(c, value); !e.empty()) errors.push_back(arg + " " + e);
    c.where[name] = arg;
  }
}

// Checks that need several settings, and the loopback exemption.
void finish(Config& c, std::vector<std::string>& errors) {
  if (!c.limit_loopback) {
    const std::vector<std::string> loopback = RateLimits().exempt_ips;
    c.options.rate_limits.exempt_ips.insert(c.options.rate_limits.exempt_ips.end(),
                                            loopback.begin(), loopback.end());
  }
  if (c.max_frame_bytes < c.options.limits.max_message_bytes) {
    auto where = c.where.find("max-frame-bytes");
    errors.push_back((where == c.where.end() ? std::string("limits") : where->second) +
                     ": max-frame-bytes must be at least max-message-bytes (" +
                     std::to_string(c.options.limits.max_message_bytes) + ")");
  }
}

}  // namespace

std::vector<SettingInfo> setting_infos() {
  std::vector<SettingInfo> out;
  for (const Setting& s : settings()) out.push_back(s.info);
  return out;
}

const std::vector<std::string>& config_sections() {
  // retention and compression are reserved: their keys come with the features.
  static const std::vector<std::string> sections = {"limits", "rate-limits", "info", "retention",
                                                    "compression"};
  return sections;
}

std::string config_path_of(const std::vector<std::string>& args, std::vector<std::string>& errors) {
  std::string path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--config") continue;
    if (i + 1 >= args.size()) {
      errors.push_back("--config needs a value");
      return "";
    }
    path = args[++i];
  }
  return path;
}

Config load_config(const std::string& config_path, const std::vector<std::string>& args,
                   std::vector<std::string>& errors, bool& help) {
  Config c;
  c.max_frame_bytes = websocket::ServerOptions().max_message_bytes;
  // The defaults: relaycore's, but for a database in the working directory.
  c.options.sqlite.path = "./relaycore.db";
  // The loopback exemptions go back in at the end, unless limit-loopback.
  c.options.rate_limits.exempt_ips.clear();
  if (!config_path.empty()) read_file(c, config_path, errors);
  read_flags(c, args, errors, help);
  finish(c, errors);
  return c;
}

}  // namespace relaycore::relay_example
