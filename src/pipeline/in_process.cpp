#include "pipeline/in_process.hpp"

#include "pipeline/history_reader.hpp"
#include "protocol/json_dom.hpp"

namespace relaycore::pipeline {
namespace {

// The reason of a ["CLOSED","<sub>","<reason>"] frame; "error: subscription closed" if it
// cannot be read (it always can: relaycore wrote it).
std::string closed_reason(const Frame& frame) {
  json::element root;
  std::string text = frame.to_string();
  if (json::parse(text, Limits(), root)) {
    json::array items;
    std::string_view reason;
    if (!root.get(items) && items.size() == 3 && !items.at(2).get(reason)) {
      return std::string(reason);
    }
  }
  return "error: subscription closed";
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

CallbackConnection::CallbackConnection(std::shared_ptr<CallbackExecutor> executor,
                                       SubscribeCallbacks callbacks, Log log)
    : executor_(std::move(executor)), callbacks_(std::move(callbacks)), log_(std::move(log)) {}

void CallbackConnection::post_locked() {
  if (scheduled_) return;
  scheduled_ = true;
  executor_->post([self = shared_from_this()] { self->deliver(); });
}

void CallbackConnection::send(Frame frame) {
  if (cancelled_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(mu_);
  if (ended_ || close_reason_) return;
  bytes_.fetch_add(frame.size(), std::memory_order_acq_rel);
  frames_.push_back(std::move(frame));
  post_locked();
}

void CallbackConnection::close(std::string_view reason) {
  std::lock_guard lock(mu_);
  if (ended_ || close_reason_) return;
  close_reason_ = "error: subscriber too slow (" + std::string(reason) + ")";
  // What is queued is dropped: the subscription is over.
  frames_.clear();
  bytes_.store(0, std::memory_order_release);
  post_locked();
}

void CallbackConnection::cancel() {
  cancelled_.store(true, std::memory_order_release);
  // Waits for a delivery in progress on another thread; from inside a callback, the delivery
  // loop checks cancelled_ before every callback.
  if (!executor_->on_callback_thread()) std::lock_guard wait(deliver_mu_);
}

void CallbackConnection::deliver() {
  std::lock_guard delivering(deliver_mu_);
  for (;;) {
    std::deque<Frame> frames;
    std::optional<std::string> reason;
    {
      std::lock_guard lock(mu_);
      frames.swap(frames_);
      if (frames.empty() && !close_reason_) {
        scheduled_ = false;
        return;
      }
      if (frames.empty()) {
        reason = std::move(close_reason_);
        close_reason_.reset();
        ended_ = true;
      }
    }
    std::size_t delivered = 0;
    for (const Frame& f : frames) {
      if (cancelled_.load(std::memory_order_acquire)) break;
      delivered += f.size();
      if (f.event()) {
        if (callbacks_.on_event)
          call_host(log_, "subscription: on_event threw", [&] { callbacks_.on_event(f.event()); });
      } else if (starts_with(f.parts()[0], "[\"EOSE\"")) {
        if (callbacks_.on_eose)
          call_host(log_, "subscription: on_eose threw", [&] { callbacks_.on_eose(); });
      } else if (starts_with(f.parts()[0], "[\"CLOSED\"")) {
        reason = closed_reason(f);
        std::lock_guard lock(mu_);
        ended_ = true;
        frames_.clear();
        break;
      }
    }
    if (reason && !cancelled_.load(std::memory_order_acquire) && callbacks_.on_closed) {
      call_host(log_, "subscription: on_closed threw", [&] { callbacks_.on_closed(*reason); });
    }
    if (reason) {
      std::lock_guard lock(mu_);
      ended_ = true;
      frames_.clear();
      bytes_.store(0, std::memory_order_release);
      scheduled_ = false;
      return;
    }
    bytes_.fetch_sub(delivered, std::memory_order_acq_rel);
    if (std::shared_ptr<Session> session = session_.lock()) session->on_drain();
    if (cancelled_.load(std::memory_order_acquire)) {
      std::lock_guard lock(mu_);
      frames_.clear();
      scheduled_ = false;
      return;
    }
  }
}

Status query_in_process(Core& core, const std::vector<Filter>& filters,
                        const std::function<bool(const EventPtr&)>& visit) {
  QueryRequest request;
  request.now = unix_now();
  request.max_limit = core.live.get().limits.max_limit;
  HistoryReader reader(filters, request);
  for (;;) {
    Result<const StoredEvent*> next = reader.next(*core.storage);
    if (!next) return next.error();
    if (*next == nullptr) return Status::ok();
    EventPtr event = (*next)->event;
    reader.pop();
    if (!visit(event)) return Status::ok();
  }
}

Result<std::uint64_t> count_in_process(Core& core, const std::vector<Filter>& filters) {
  QueryRequest request;
  request.now = unix_now();
  request.max_limit = core.live.get().limits.max_limit;
  return core.storage->count(filters, request);
}

}  // namespace relaycore::pipeline
