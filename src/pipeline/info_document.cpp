// NIP-11: the relay information document. supported_nips lists exactly what relaycore
// implements, and the limitation block is read from the configured Limits. Built at open and
// again by Relay::reconfigure.
#include <fmt/format.h>

#include <array>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/json_writer.hpp"
#include "relaycore/options.hpp"

namespace relaycore {
namespace {

constexpr std::array kSupportedNips = {1, 9, 11, 40, 42, 45, 50, 70};

// A host-supplied string as a JSON string literal.
std::string quoted(std::string_view s) {
  std::string out;
  json::append_string(out, s);
  return out;
}

}  // namespace

std::string build_info_document(const Options& options) {
  const RelayInfo& info = options.info;
  const Limits& limits = options.limits;
  std::string out;
  auto to = std::back_inserter(out);
  fmt::format_to(to, R"({{"name":{},"description":{},)", quoted(info.name),
                 quoted(info.description));
  const std::pair<std::string_view, const std::string&> optional[] = {
      {"pubkey", info.pubkey},
      {"contact", info.contact},
      {"icon", info.icon},
      {"banner", info.banner},
      {"posting_policy", info.posting_policy}};
  for (const auto& [key, value] : optional) {
    if (!value.empty()) fmt::format_to(to, R"("{}":{},)", key, quoted(value));
  }
  fmt::format_to(to,
                 R"("supported_nips":[{}],"software":{},"version":{},"limitation":{{)"
                 R"("max_message_length":{},"max_subscriptions":{},"max_filters":{},)"
                 R"("max_limit":{},"max_subid_length":{},"max_event_tags":{},)"
                 R"("max_content_length":{},"min_pow_difficulty":0,"created_at_upper_limit":{},)"
                 R"("auth_required":{},"payment_required":false,"restricted_writes":{}}}}})",
                 fmt::join(kSupportedNips, ","), quoted(info.software), quoted(info.version),
                 limits.max_message_bytes, limits.max_subscriptions, limits.max_filters,
                 limits.max_limit, limits.max_subid_length, limits.max_event_tags,
                 limits.max_content_bytes, static_cast<std::uint64_t>(options.max_future_seconds),
                 options.auth_on_connect, options.event_policy != nullptr);
  return out;
}

}  // namespace relaycore
