// Limits: the sizes and counts relaycore accepts from clients. Every parser and queue checks
// against these, so bad input costs bounded memory and time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace relaycore {

struct Limits {
  // Largest client frame, in bytes, before any parsing.
  // Default: 131072 (128 KiB), as strfry's maxWebsocketPayloadSize.
  std::size_t max_message_bytes = 131072;

  // Largest event, measured as its canonical JSON.
  // Default: 65536 (64 KiB), as strfry.
  std::size_t max_event_bytes = 65536;

  // Most tags an event may carry.
  // Default: 2000, as strfry.
  std::size_t max_event_tags = 2000;

  // Most strings in one tag (the name included).
  // Default: 100.
  std::size_t max_tag_strings = 100;

  // Largest single tag string, in bytes.
  // Default: 1024, as strfry's maxTagValSize.
  std::size_t max_tag_value_bytes = 1024;

  // Largest content string, in bytes.
  // Default: 65536; max_event_bytes binds first unless raised.
  std::size_t max_content_bytes = 65536;

  // Deepest JSON nesting in any frame. An event needs 4 (message, event, tags, tag).
  // Default: 8.
  std::size_t max_json_depth = 8;

  // Longest subscription id. NIP-01 caps it at 64 characters.
  // Default: 64.
  std::size_t max_subid_length = 64;

  // Most filters in one REQ or COUNT.
  // Default: 16.
  std::size_t max_filters = 16;

  // Most values in one filter field (ids, authors, kinds or one #x list).
  // Default: 1000.
  std::size_t max_filter_values = 1000;

  // Most #x tag conditions in one filter.
  // Default: 16.
  std::size_t max_filter_tags = 16;

  // Longest search string in a filter (NIP-50).
  // Default: 256.
  std::size_t max_search_bytes = 256;

  // The largest `limit` a REQ is served with; larger limits are clamped, not rejected.
  // Default: 500, as strfry's maxFilterLimit.
  std::uint32_t max_limit = 500;

  // Most open subscriptions per session.
  // Default: 20, as strfry's maxSubsPerConnection.
  std::size_t max_subscriptions = 20;
};

}  // namespace relaycore
