#include "pipeline/subscription.hpp"

#include "pipeline/outbox.hpp"
#include "protocol/json_writer.hpp"

namespace relaycore::pipeline {
namespace {

std::string make_event_head(std::string_view sub_id) {
  std::string head = "[\"EVENT\",";
  json::append_string(head, sub_id);
  head.push_back(',');
  return head;
}

}  // namespace

Subscription::Subscription(std::uint64_t key_in, std::string sub_id_in,
                           std::vector<Filter> filters_in, std::weak_ptr<Outbox> outbox_in,
                           std::size_t max_pending_bytes_in)
    : key(key_in),
      sub_id(std::move(sub_id_in)),
      event_head(make_event_head(sub_id)),
      filters(std::move(filters_in)),
      outbox(std::move(outbox_in)),
      max_pending_bytes(max_pending_bytes_in) {}

void Subscription::deliver(const EventPtr& event) {
  std::shared_ptr<Outbox> s = outbox.lock();
  if (!s) return;
  bool overflow = false;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    if (live_) {
      // Queued under the lock so that go_live()'s backlog cannot be overtaken.
      s->enqueue(Frame(event_head, event));
    } else {
      pending_bytes_ += event->json().size();
      if (pending_bytes_ > max_pending_bytes) {
        overflow = true;
      } else {
        pending_.push_back(event);
      }
    }
  }
  if (overflow) {
    s->close_slow_consumer();
    return;
  }
  s->flush();
}

void Subscription::go_live() {
  std::shared_ptr<Outbox> s = outbox.lock();
  if (!s) return;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    for (EventPtr& e : pending_) s->enqueue(Frame(event_head, std::move(e)));
    pending_.clear();
    pending_bytes_ = 0;
    live_ = true;
  }
  s->flush();
}

void Subscription::cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  pending_.clear();
}

bool Subscription::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

}  // namespace relaycore::pipeline
