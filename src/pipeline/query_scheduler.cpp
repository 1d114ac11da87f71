#include "pipeline/query_scheduler.hpp"

#include <algorithm>

#include "pipeline/neg_session.hpp"
#include "pipeline/query_cost.hpp"
#include "pipeline/subscription.hpp"

namespace relaycore::pipeline {

bool abandoned(const QueryJob& job) {
  if (const auto* history = std::get_if<HistoryJob>(&job)) return history->sub->cancelled();
  if (const auto* neg = std::get_if<NegJob>(&job)) return neg->session->closed();
  return std::get<CountJob>(job).outbox.expired();
}

QueryScheduler::QueryScheduler(std::size_t max_jobs_per_lane, Clock::duration park_timeout,
                               std::size_t max_expensive)
    : max_jobs_per_lane_(std::max<std::size_t>(1, max_jobs_per_lane)),
      park_timeout_(park_timeout),
      max_expensive_(std::max<std::size_t>(1, max_expensive)) {}

std::deque<std::shared_ptr<QueryLane>>::iterator QueryScheduler::runnable() {
  if (running_expensive_ < max_expensive_) return ring_.begin();
  return std::find_if(ring_.begin(), ring_.end(), [](const std::shared_ptr<QueryLane>& lane) {
    return !expensive(*lane->jobs_.front());
  });
}

void QueryScheduler::set_state(QueryLane& lane, QueryLane::State state) noexcept {
  lane.state_ = state;
  lane.parked_.store(state == QueryLane::State::kParked, std::memory_order_release);
}

std::shared_ptr<QueryLane> QueryScheduler::open_lane(QueryLane::Hooks hooks) {
  return std::shared_ptr<QueryLane>(new QueryLane(std::move(hooks)));
}

QueryScheduler::Submit QueryScheduler::submit(const std::shared_ptr<QueryLane>& lane,
                                              QueryJob job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || lane->closed_) return Submit::kStopped;
    if (lane->jobs_.size() >= max_jobs_per_lane_) {
      // Jobs nobody waits for go first; the running one stays where its reader has it.
      const std::size_t before = lane->jobs_.size();
      auto first = lane->jobs_.begin();
      if (lane->state_ == QueryLane::State::kRunning) ++first;
      lane->jobs_.erase(
          std::remove_if(first, lane->jobs_.end(),
                         [](const std::unique_ptr<QueryJob>& j) { return abandoned(*j); }),
          lane->jobs_.end());
      jobs_total_.fetch_sub(before - lane->jobs_.size(), std::memory_order_relaxed);
      if (lane->jobs_.size() >= max_jobs_per_lane_) return Submit::kFull;
    }
    lane->jobs_.push_back(std::make_unique<QueryJob>(std::move(job)));
    jobs_total_.fetch_add(1, std::memory_order_relaxed);
    if (lane->state_ != QueryLane::State::kIdle) return Submit::kQueued;
    set_state(*lane, QueryLane::State::kQueued);
    ring_.push_back(lane);
  }
  cv_.notify_one();
  return Submit::kQueued;
}

void QueryScheduler::resume(const std::shared_ptr<QueryLane>& lane) {
  {
    std::lock_guard lock(mu_);
    if (lane->state_ != QueryLane::State::kParked) return;
    parked_.erase(lane->parked_at_);
    set_state(*lane, QueryLane::State::kQueued);
    ring_.push_back(lane);
  }
  cv_.notify_one();
}

void QueryScheduler::drop_jobs(QueryLane& lane, bool keep_front) {
  const std::size_t keep = keep_front && !lane.jobs_.empty() ? 1 : 0;
  jobs_total_.fetch_sub(lane.jobs_.size() - keep, std::memory_order_relaxed);
  lane.jobs_.erase(lane.jobs_.begin() + static_cast<std::ptrdiff_t>(keep), lane.jobs_.end());
}

void QueryScheduler::close_lane(const std::shared_ptr<QueryLane>& lane) {
  std::lock_guard lock(mu_);
  if (lane->closed_) return;
  lane->closed_ = true;
  switch (lane->state_) {
    case QueryLane::State::kRunning:
      // The reader still holds the front job; finish_slice() drops it.
      drop_jobs(*lane, /*keep_front=*/true);
      return;
    case QueryLane::State::kParked:
      parked_.erase(lane->parked_at_);
      break;
    case QueryLane::State::kQueued:
      ring_.erase(std::find(ring_.begin(), ring_.end(), lane));
      break;
    case QueryLane::State::kIdle:
      break;
  }
  set_state(*lane, QueryLane::State::kIdle);
  drop_jobs(*lane, /*keep_front=*/false);
}

void QueryScheduler::take_expired(Clock::time_point now,
                                  std::vector<std::shared_ptr<QueryLane>>& out) {
  while (!parked_.empty() && parked_.begin()->first <= now) {
    std::shared_ptr<QueryLane> lane = std::move(parked_.begin()->second);
    parked_.erase(parked_.begin());
    set_state(*lane, QueryLane::State::kIdle);
    lane->closed_ = true;
    drop_jobs(*lane, /*keep_front=*/false);
    out.push_back(std::move(lane));
  }
}

void QueryScheduler::finish_slice(const std::shared_ptr<QueryLane>& lane, SliceOutcome outcome) {
  bool check_drain = false;
  {
    std::lock_guard lock(mu_);
    if (std::exchange(lane->running_expensive_, false)) {
      --running_expensive_;
      // A reader may be waiting for an expensive job to be allowed to run.
      cv_.notify_all();
    }
    if (lane->closed_) {
      set_state(*lane, QueryLane::State::kIdle);
      drop_jobs(*lane, /*keep_front=*/false);
      return;
    }
    if (outcome == SliceOutcome::kDone) {
      lane->jobs_.pop_front();
      jobs_total_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (outcome == SliceOutcome::kPark && !stopping_) {
      set_state(*lane, QueryLane::State::kParked);
      lane->parked_at_ = parked_.emplace(Clock::now() + park_timeout_, lane);
      check_drain = true;
    } else if (lane->jobs_.empty() || (stopping_ && outcome == SliceOutcome::kPark)) {
      set_state(*lane, QueryLane::State::kIdle);
      drop_jobs(*lane, /*keep_front=*/false);
    } else {
      set_state(*lane, QueryLane::State::kQueued);
      ring_.push_back(lane);
    }
  }
  // The connection may have drained between the job's last look and the lane parking; the
  // drain notification would then have found nothing parked.
  if (check_drain && call_hook(lane->hooks_.drained)) resume(lane);
  cv_.notify_one();
}

bool QueryScheduler::call_hook(const std::function<bool()>& hook) { return hook && hook(); }

void QueryScheduler::work(const std::function<SliceOutcome(QueryJob&, Clock::time_point)>& run,
                          Clock::duration slice) {
  std::vector<std::shared_ptr<QueryLane>> expired;
  for (;;) {
    std::shared_ptr<QueryLane> lane;
    QueryJob* job = nullptr;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        take_expired(Clock::now(), expired);
        if (!expired.empty() || runnable() != ring_.end()) break;
        if (stopping_ && ring_.empty()) break;
        if (parked_.empty()) {
          cv_.wait(lock);
        } else {
          // A copy: resume() may erase the entry while this thread waits.
          const Clock::time_point next_deadline = parked_.begin()->first;
          cv_.wait_until(lock, next_deadline);
        }
      }
      if (expired.empty()) {
        if (ring_.empty()) return;  // stopping, and nothing runnable is left
        auto it = runnable();
        lane = std::move(*it);
        ring_.erase(it);
        set_state(*lane, QueryLane::State::kRunning);
        job = lane->jobs_.front().get();
        if (expensive(*job)) {
          lane->running_expensive_ = true;
          ++running_expensive_;
        }
      }
    }
    if (!expired.empty()) {
      for (const std::shared_ptr<QueryLane>& gone : expired) {
        if (gone->hooks_.expired) gone->hooks_.expired();
      }
      expired.clear();
      continue;
    }
    const SliceOutcome outcome = run(*job, Clock::now() + slice);
    finish_slice(lane, outcome);
  }
}

void QueryScheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [deadline, lane] : parked_) {
      set_state(*lane, QueryLane::State::kIdle);
      drop_jobs(*lane, /*keep_front=*/false);
    }
    parked_.clear();
  }
  cv_.notify_all();
}

}  // namespace relaycore::pipeline
