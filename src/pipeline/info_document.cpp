// NIP-11: the relay information document. supported_nips lists exactly what relaycore
// implements, and the limitation block is read from the configured Limits.
#include <string>

#include "protocol/json_writer.hpp"
#include "relaycore/options.hpp"

namespace relaycore {

std::string build_info_document(const Options& options) {
  const RelayInfo& info = options.info;
  const Limits& limits = options.limits;
  std::string out = "{";
  auto field = [&out](std::string_view key, std::string_view value) {
    json::append_string(out, key);
    out.push_back(':');
    json::append_string(out, value);
    out.push_back(',');
  };
  auto number = [&out](std::string_view key, std::uint64_t value) {
    json::append_string(out, key);
    out.push_back(':');
    json::append_uint(out, value);
    out.push_back(',');
  };
  field("name", info.name);
  field("description", info.description);
  if (!info.pubkey.empty()) field("pubkey", info.pubkey);
  if (!info.contact.empty()) field("contact", info.contact);
  out.append("\"supported_nips\":[1,9,11,40,42,45,50,70],");
  field("software", info.software);
  field("version", info.version);
  out.append("\"limitation\":{");
  number("max_message_length", limits.max_message_bytes);
  number("max_subscriptions", limits.max_subscriptions);
  number("max_filters", limits.max_filters);
  number("max_limit", limits.max_limit);
  number("max_subid_length", limits.max_subid_length);
  number("max_event_tags", limits.max_event_tags);
  number("max_content_length", limits.max_content_bytes);
  number("min_pow_difficulty", 0);
  number("created_at_upper_limit", static_cast<std::uint64_t>(options.max_future_seconds));
  out.append("\"auth_required\":").append(options.auth_on_connect ? "true" : "false");
  out.append(",\"payment_required\":false,\"restricted_writes\":");
  out.append(options.event_policy ? "true" : "false");
  out.append("}}");
  return out;
}

}  // namespace relaycore
