// The Redis PubSub: a publisher thread drains a bounded queue into PUBLISH commands (pipelined
// per batch), and a subscriber thread with its own connection hands received events to the
// relay. Neither thread is ever waited on by ingest: publish() only queues.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "redis/redis_connection.hpp"
#include "relaycore/redis.hpp"

namespace relaycore {
namespace {

using redis::Backoff;
using redis::ContextPtr;
using redis::ReplyPtr;

// Most PUBLISH commands written before their replies are read.
constexpr std::size_t kMaxBatch = 256;

struct Outgoing {
  EventPtr event;
  std::string origin;
};

// A reply is the pub/sub message ["message", channel, payload].
bool is_message(const redisReply* r) {
  return r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
         r->element[0]->type == REDIS_REPLY_STRING &&
         std::string_view(r->element[0]->str, r->element[0]->len) == "message" &&
         r->element[2]->type == REDIS_REPLY_STRING;
}

class RedisPubSub final : public PubSub {
 public:
  RedisPubSub(RedisOptions options, redis::RedisAddress address)
      : options_(std::move(options)), address_(std::move(address)) {}

  ~RedisPubSub() override { close(); }

  // Starts the publisher and waits for its first connection attempt, so that a PubSub made
  // while Redis is up publishes from its first event.
  void start() {
    publisher_ = std::thread([this] { run_publisher(); });
    std::unique_lock lock(mu_);
    state_cv_.wait(lock, [this] { return publisher_tried_; });
  }

  Status publish(const EventPtr& event, const std::string& origin) override {
    if (!event) return Status::invalid("no event");
    if (origin.find('\n') != std::string::npos) {
      return Status::error("origin id must not contain a newline");
    }
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status::error("pubsub is closed");
      if (!publisher_up_) return Status::error("redis is not connected");
      if (queue_.size() >= options_.queue_capacity) {
        return Status::error("redis publish queue is full");
      }
      queue_.push_back(Outgoing{event, origin});
    }
    queue_cv_.notify_one();
    return Status::ok();
  }

  Status subscribe(Handler handler) override {
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status::error("pubsub is closed");
      if (subscriber_.joinable()) return Status::error("subscribe() was already called");
      handler_ = std::move(handler);
      subscriber_ = std::thread([this] { run_subscriber(); });
    }
    // Wait (bounded) for the first SUBSCRIBE to be confirmed; an unreachable Redis is retried.
    std::unique_lock lock(mu_);
    state_cv_.wait_for(lock, std::chrono::milliseconds(options_.timeout_ms) * 2,
                       [this] { return subscribed_ || closed_; });
    return Status::ok();
  }

  void close() override {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      // Wakes a subscriber blocked on its socket; it sees closed_ and exits.
      if (subscriber_fd_ >= 0) ::shutdown(subscriber_fd_, SHUT_RDWR);
    }
    queue_cv_.notify_all();
    state_cv_.notify_all();
    if (publisher_.joinable() && publisher_.get_id() != std::this_thread::get_id()) {
      publisher_.join();
    }
    if (subscriber_.joinable() && subscriber_.get_id() != std::this_thread::get_id()) {
      subscriber_.join();
    }
  }

  std::uint64_t dropped_after_accept() const override { return dropped_.load(); }

 private:
  // Waits `delay` or until close(); true when closed.
  bool sleep_unless_closed(std::chrono::milliseconds delay) {
    std::unique_lock lock(mu_);
    return state_cv_.wait_for(lock, delay, [this] { return closed_; });
  }

  // Marks the publisher down and drops what is queued: publish() refuses until it is back.
  void publisher_down() {
    std::lock_guard lock(mu_);
    publisher_up_ = false;
    publisher_tried_ = true;
    dropped_ += queue_.size();
    queue_.clear();
    state_cv_.notify_all();
  }

  void run_publisher() {
    Backoff backoff(options_.reconnect_min_ms, options_.reconnect_max_ms);
    ContextPtr context;
    std::vector<Outgoing> batch;
    for (;;) {
      if (!context) {
        {
          std::lock_guard lock(mu_);
          if (closed_) break;
        }
        Result<ContextPtr> connected = redis::connect_redis(address_, options_.timeout_ms);
        if (!connected) {
          publisher_down();
          if (sleep_unless_closed(backoff.next())) return;
          continue;
        }
        context = std::move(connected).value();
        backoff.reset();
        std::lock_guard lock(mu_);
        publisher_up_ = true;
        publisher_tried_ = true;
        state_cv_.notify_all();
      }
      {
        std::unique_lock lock(mu_);
        queue_cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
        // After close() the queue is still sent, once; then the thread ends.
        if (queue_.empty()) break;
        const std::size_t n = std::min(queue_.size(), kMaxBatch);
        for (std::size_t i = 0; i < n; ++i) batch.push_back(std::move(queue_[i]));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      const std::size_t sent = send_batch(context.get(), batch);
      dropped_ += batch.size() - sent;
      // A short count means the connection failed (or is out of step): start a new one.
      const bool failed = sent < batch.size();
      batch.clear();
      if (failed) {
        context.reset();
        publisher_down();
      }
    }
    publisher_down();
  }

  // Pipelines one PUBLISH per event; returns how many Redis acknowledged.
  std::size_t send_batch(redisContext* context, const std::vector<Outgoing>& batch) {
    std::string message;
    for (const Outgoing& o : batch) {
      const std::string_view json = o.event->json();
      message.assign(o.origin).append(1, '\n').append(json);
      if (redisAppendCommand(context, "PUBLISH %b %b", options_.channel.data(),
                             options_.channel.size(), message.data(), message.size()) != REDIS_OK) {
        return 0;
      }
    }
    std::size_t sent = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(context, &raw) != REDIS_OK) return sent;
      ReplyPtr reply(static_cast<redisReply*>(raw));
      if (reply && reply->type != REDIS_REPLY_ERROR) ++sent;
    }
    return sent;
  }

  // Connects and subscribes; null when Redis is unreachable or refuses.
  ContextPtr open_subscription() {
    Result<ContextPtr> connected = redis::connect_redis(address_, options_.timeout_ms);
    if (!connected) return nullptr;
    ContextPtr context = std::move(connected).value();
    ReplyPtr reply(static_cast<redisReply*>(redisCommand(
        context.get(), "SUBSCRIBE %b", options_.channel.data(), options_.channel.size())));
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return nullptr;
    // Messages may be far apart: wait for them without a timeout (keepalive finds dead peers).
    if (!redis::set_timeout(context.get(), 0)) return nullptr;
    return context;
  }

  void run_subscriber() {
    Backoff backoff(options_.reconnect_min_ms, options_.reconnect_max_ms);
    for (;;) {
      ContextPtr context = open_subscription();
      if (context) {
        {
          std::lock_guard lock(mu_);
          if (closed_) return;
          subscriber_fd_ = context->fd;
          subscribed_ = true;
        }
        state_cv_.notify_all();
        backoff.reset();
        receive(context.get());
        std::lock_guard lock(mu_);
        subscriber_fd_ = -1;
      }
      context.reset();
      if (sleep_unless_closed(backoff.next())) return;
    }
  }

  // Hands every message to the handler until the connection fails or close() shuts it down.
  void receive(redisContext* context) {
    for (;;) {
      void* raw = nullptr;
      if (redisGetReply(context, &raw) != REDIS_OK) return;
      ReplyPtr reply(static_cast<redisReply*>(raw));
      if (!reply || !is_message(reply.get())) continue;
      deliver(std::string_view(reply->element[2]->str, reply->element[2]->len));
    }
  }

  // origin '\n' canonical JSON; anything else, or an event whose id does not match, is dropped.
  void deliver(std::string_view payload) {
    const std::size_t eol = payload.find('\n');
    if (eol == std::string_view::npos) return;
    Result<EventPtr> event = parse_event(payload.substr(eol + 1), options_.limits);
    if (!event || !(*event)->check_id()) return;
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
    }
    try {
      handler_(*event, std::string(payload.substr(0, eol)));
    } catch (...) {
      // The handler is host code; an exception must not end the subscriber thread.
    }
  }

  const RedisOptions options_;
  const redis::RedisAddress address_;

  std::mutex mu_;
  // Signals the publisher thread: an event was queued, or close().
  std::condition_variable queue_cv_;
  // Signals connection state changes and close().
  std::condition_variable state_cv_;
  std::deque<Outgoing> queue_;
  bool closed_ = false;
  bool publisher_up_ = false;
  bool publisher_tried_ = false;
  bool subscribed_ = false;
  int subscriber_fd_ = -1;
  Handler handler_;

  std::atomic<std::uint64_t> dropped_{0};
  std::thread publisher_;
  std::thread subscriber_;
};

}  // namespace

Result<std::shared_ptr<PubSub>> new_redis_pubsub(RedisOptions options) {
  Result<redis::RedisAddress> address = redis::parse_redis_url(options.url);
  if (!address) return address.error();
  if (options.channel.empty()) return Status::error("redis channel must not be empty");
  if (options.queue_capacity == 0) return Status::error("redis queue_capacity must be positive");
  if (options.timeout_ms == 0) return Status::error("redis timeout_ms must be positive");
  auto pubsub = std::make_shared<RedisPubSub>(std::move(options), std::move(address).value());
  pubsub->start();
  return std::shared_ptr<PubSub>(std::move(pubsub));
}

}  // namespace relaycore
