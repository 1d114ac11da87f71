// Prometheus text exposition, shared by the relay's metrics and the WebSocket server's: every
// name gets the relaycore_ prefix.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

namespace relaycore::prometheus {

// One unlabelled sample with its HELP and TYPE lines.
inline void metric(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help, std::uint64_t value) {
  fmt::format_to(std::back_inserter(out),
                 "# HELP relaycore_{0} {2}\n# TYPE relaycore_{0} {1}\nrelaycore_{0} {3}\n", name,
                 type, help, value);
}

// The HELP and TYPE lines of a metric whose samples follow as labelled() lines.
inline void family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP relaycore_{0} {2}\n# TYPE relaycore_{0} {1}\n",
                 name, type, help);
}

// One sample with one label.
inline void labelled(std::string& out, std::string_view name, std::string_view label,
                     std::string_view value, std::uint64_t n) {
  fmt::format_to(std::back_inserter(out), "relaycore_{}{{{}=\"{}\"}} {}\n", name, label, value, n);
}

}  // namespace relaycore::prometheus
