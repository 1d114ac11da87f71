#include "config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string_view>
#include <utility>

#include "config_settings.hpp"
#include "relaycore/rate_limit.hpp"
#include "relaycore/websocket/server.hpp"

namespace relaycore::relay_example {
namespace {

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
    if (s.info.name == "trusted-proxy") c.options.rate_limits.trusted_proxies.clear();
    if (s.info.name == "exempt-pubkey") c.options.rate_limits.exempt_pubkeys.clear();
    if (s.info.name == "max-age") c.options.retention.max_age.clear();
    if (s.info.name == "max-per-author") c.options.retention.max_per_author.clear();
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
  c.permessage_deflate = websocket::ServerOptions().permessage_deflate;
  c.forwarded_header = websocket::ServerOptions().forwarded_header;
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
