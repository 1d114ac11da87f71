// Parsing of redis://host:port[/db] URLs for the Redis PubSub.
#pragma once

#include <string>
#include <string_view>

#include "relaycore/status.hpp"

namespace relaycore::redis {

struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
};

// "error: ..." for anything but redis://host[:port][/db]; an IPv6 host is written in brackets.
Result<RedisAddress> parse_redis_url(std::string_view url);

}  // namespace relaycore::redis
