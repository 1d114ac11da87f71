#include "redis/redis_connection.hpp"

#include <sys/time.h>

#include <string>

namespace relaycore::redis {
namespace {

timeval to_timeval(std::uint32_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

}  // namespace

bool set_timeout(redisContext* context, std::uint32_t timeout_ms) {
  return redisSetTimeout(context, to_timeval(timeout_ms)) == REDIS_OK;
}

Result<ContextPtr> connect_redis(const RedisAddress& address, std::uint32_t timeout_ms) {
  ContextPtr context(
      redisConnectWithTimeout(address.host.c_str(), address.port, to_timeval(timeout_ms)));
  if (!context) return Status::error("redis: out of memory");
  if (context->err != 0) return Status::error(std::string("redis: ") + context->errstr);
  // Keepalive notices a peer that vanished without closing (the subscriber waits forever).
  if (!set_timeout(context.get(), timeout_ms) || redisEnableKeepAlive(context.get()) != REDIS_OK) {
    return Status::error(std::string("redis: ") + context->errstr);
  }
  if (address.db != 0) {
    ReplyPtr reply(static_cast<redisReply*>(redisCommand(context.get(), "SELECT %d", address.db)));
    if (!reply) return Status::error(std::string("redis: ") + context->errstr);
    if (reply->type == REDIS_REPLY_ERROR) {
      return Status::error(std::string("redis: ") + std::string(reply->str, reply->len));
    }
  }
  return context;
}

}  // namespace relaycore::redis
