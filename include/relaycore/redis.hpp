// Redis pub/sub: carries committed events between relay nodes that share one storage (see
// docs/multinode.md). Part of the optional relaycore::redis target, built when hiredis is found.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "relaycore/export.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/pubsub.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

struct RedisOptions {
  // Where Redis listens: redis://host:port[/db]. Default: redis://127.0.0.1:6379 (db 0).
  std::string url = "redis://127.0.0.1:6379";
  // The pub/sub channel every node of one relay publishes to and subscribes to.
  // Default: "relaycore:events".
  std::string channel = "relaycore:events";
  // First wait before reconnecting a lost connection; doubled after each failed attempt up to
  // `reconnect_max_ms`, and reset once connected. Default: 100.
  std::uint32_t reconnect_min_ms = 100;
  // Longest wait between reconnect attempts. Default: 5000.
  std::uint32_t reconnect_max_ms = 5000;
  // Limit for connecting and for each command round trip; a Redis that does not answer within
  // it counts as down. Default: 1000.
  std::uint32_t timeout_ms = 1000;
  // Events accepted by publish() and waiting for the publisher thread. When full, publish()
  // drops the event and returns an error. Default: 65536.
  std::size_t queue_capacity = 65536;
  // Limits for parsing received events; give it the relay's Options::limits so that every event
  // a node accepts can reach the others. Default: Limits().
  Limits limits;
};

// A PubSub over Redis PUBLISH/SUBSCRIBE. Each message is the publishing node's origin id, a
// newline, then the event's canonical JSON; received messages are parsed strictly and their id
// checked (an invalid one is dropped) and handed to the handler with their origin.
//
// [Threading] publish() may be called from any thread. The handler runs on the adapter's own
//   subscriber thread, one call at a time.
// [Blocking] publish() never waits on Redis: it hands the event to a bounded queue that a
//   publisher thread drains in pipelined batches. subscribe() waits up to `timeout_ms` for the
//   first subscription to be confirmed, so that a relay opened on a running Redis receives from
//   its first moment. close() waits for both threads, at most about `timeout_ms`.
// [Ownership] Queued events are shared EventPtr, released once sent or dropped.
// [Errors] publish() returns "error: ..." when Redis is down (not connected at that moment) or
//   the queue is full; events accepted and then lost because the connection dropped are counted
//   by dropped_after_accept(). Both connections reconnect on their own with backoff, so events
//   published while Redis is down are lost: delivery is at-most-once. Returns "error: ..." for a
//   malformed URL or options; an unreachable Redis is not an error at creation.
RELAYCORE_API Result<std::shared_ptr<PubSub>> new_redis_pubsub(RedisOptions options);

}  // namespace relaycore
