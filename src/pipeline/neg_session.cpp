#include "pipeline/neg_session.hpp"

#include <algorithm>

#include "pipeline/outbox.hpp"
#include "pipeline/thread_group.hpp"
#include "relaycore/message.hpp"

namespace relaycore::pipeline {

NegSession::NegSession(std::string id, Filter f, std::weak_ptr<Outbox> out, bool none)
    : sub_id(std::move(id)),
      filter(std::move(f)),
      outbox(std::move(out)),
      empty(none),
      last_active_(Clock::now()) {}

bool NegSession::begin_job() {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  ++jobs_;
  return true;
}

void NegSession::end_job() {
  std::unique_ptr<Negentropy> freed;
  std::lock_guard lock(mu_);
  if (jobs_ > 0) --jobs_;
  last_active_ = Clock::now();
  if (closed_ && jobs_ == 0) freed = std::move(neg);
}

bool NegSession::close() {
  std::unique_ptr<Negentropy> freed;
  std::lock_guard lock(mu_);
  if (closed_) return false;
  closed_ = true;
  if (jobs_ == 0) freed = std::move(neg);
  return true;
}

bool NegSession::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

bool NegSession::close_if_idle(Clock::time_point idle_since) {
  std::unique_ptr<Negentropy> freed;
  std::lock_guard lock(mu_);
  if (closed_ || jobs_ > 0 || last_active_ >= idle_since) return false;
  closed_ = true;
  freed = std::move(neg);
  return true;
}

NegReaper::NegReaper(Clock::duration idle_timeout) : idle_timeout_(idle_timeout) {}

NegReaper::~NegReaper() { stop(); }

void NegReaper::add(std::weak_ptr<NegSession> session) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  sessions_.push_back(std::move(session));
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void NegReaper::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void NegReaper::run() {
  name_this_thread("rc-neg-reaper");
  // A session is closed between one and one and a quarter idle timeouts after its last reply.
  const Clock::duration tick = std::clamp<Clock::duration>(
      idle_timeout_ / 4, std::chrono::milliseconds(5), std::chrono::seconds(1));
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, tick);
    if (stopping_) break;
    lock.unlock();
    sweep(Clock::now());
    lock.lock();
  }
}

void NegReaper::sweep(Clock::time_point now) {
  std::vector<std::weak_ptr<NegSession>> watched;
  {
    std::lock_guard lock(mu_);
    watched.swap(sessions_);
  }
  std::vector<std::weak_ptr<NegSession>> kept;
  for (std::weak_ptr<NegSession>& weak : watched) {
    std::shared_ptr<NegSession> s = weak.lock();
    if (!s) continue;
    if (s->close_if_idle(now - idle_timeout_)) {
      if (std::shared_ptr<Outbox> outbox = s->outbox.lock()) {
        outbox->send(Frame(neg_err_message(
            s->sub_id, "closed: the negentropy session was idle too long; send NEG-OPEN again")));
      }
      continue;
    }
    if (!s->closed()) kept.push_back(std::move(weak));
  }
  std::lock_guard lock(mu_);
  sessions_.insert(sessions_.end(), kept.begin(), kept.end());
}

}  // namespace relaycore::pipeline
