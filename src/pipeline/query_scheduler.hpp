// QueryScheduler: shares the reader threads fairly between sessions. Each session has a lane, a
// queue of its REQ and COUNT jobs. Runnable lanes wait in one ring; a reader takes the lane at
// the front, runs one time slice of its first job, and puts the lane at the back if work is
// left. So a session with 10,000 queued REQs delays another session's first REQ by at most one
// slice per reader, and a lane runs on one reader at a time.
//
// A job whose connection is full parks its lane: the lane leaves the ring and holds no thread
// until the owner reports a drain (resume()), or is expired when its deadline passes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "pipeline/jobs.hpp"

namespace relaycore::pipeline {

// What one slice of a job came to.
enum class SliceOutcome : std::uint8_t {
  kDone,   // the job is finished (or abandoned)
  kYield,  // its time slice is used up; more to do
  kPark,   // its connection is full; resume after a drain
};

class QueryLane {
 public:
  // True while the lane is parked. Read without the scheduler's lock, as a cheap first test
  // before a resume(): a lane that parks just after it read false checks for a drain itself.
  bool parked() const noexcept { return parked_.load(std::memory_order_acquire); }

  // Called by the scheduler with no lock held.
  struct Hooks {
    // True when the owner's connection has drained enough to resume a parked job.
    std::function<bool()> drained;
    // The lane stayed parked past its deadline: the owner closes the slow connection.
    std::function<void()> expired;
  };

 private:
  friend class QueryScheduler;
  enum class State : std::uint8_t { kIdle, kQueued, kRunning, kParked };

  explicit QueryLane(Hooks hooks) : hooks_(std::move(hooks)) {}

  const Hooks hooks_;
  // Guarded by the scheduler's mutex. While the lane runs, the front job belongs to the reader
  // running it, outside the lock: jobs are held by pointer, so that the deque may change (a
  // push, a purge of abandoned jobs behind the front) while the reader works on that job.
  std::deque<std::unique_ptr<QueryJob>> jobs_;
  State state_ = State::kIdle;
  // state_ == kParked, for parked().
  std::atomic<bool> parked_{false};
  bool closed_ = false;
  // Its running slice counts against the scheduler's max_expensive.
  bool running_expensive_ = false;
  std::multimap<Clock::time_point, std::shared_ptr<QueryLane>>::iterator parked_at_;
};

class QueryScheduler {
 public:
  // `max_jobs_per_lane` bounds each session's queue; `park_timeout` is how long a lane may stay
  // parked before it is expired; at most `max_expensive` slices of expensive jobs
  // (query_cost.hpp) run at once, so that with fewer of them than readers, a cheap query always
  // finds a reader free.
  QueryScheduler(std::size_t max_jobs_per_lane, Clock::duration park_timeout,
                 std::size_t max_expensive);

  std::shared_ptr<QueryLane> open_lane(QueryLane::Hooks hooks);

  enum class Submit : std::uint8_t { kQueued, kFull, kStopped };
  // Queues a job on the lane. kFull when the lane already holds its maximum of live jobs.
  Submit submit(const std::shared_ptr<QueryLane>& lane, QueryJob job);

  // The owner's connection drained: a parked lane goes back into the ring.
  void resume(const std::shared_ptr<QueryLane>& lane);

  // Drops the lane's jobs; it never runs again. The job a reader is running is dropped when
  // its slice ends.
  void close_lane(const std::shared_ptr<QueryLane>& lane);

  // Runs slices until stop(): `run` is given the job and the time its slice ends.
  void work(const std::function<SliceOutcome(QueryJob&, Clock::time_point)>& run,
            Clock::duration slice);

  // Readers finish the lanes in the ring, drop the parked ones, and return from work().
  void stop();

  // Jobs waiting or running, across all lanes.
  std::size_t size() const noexcept { return jobs_total_.load(std::memory_order_relaxed); }

 private:
  using Parked = std::multimap<Clock::time_point, std::shared_ptr<QueryLane>>;

  // Removes lanes whose deadline has passed from parked_; called with mu_ held.
  void take_expired(Clock::time_point now, std::vector<std::shared_ptr<QueryLane>>& out);
  void finish_slice(const std::shared_ptr<QueryLane>& lane, SliceOutcome outcome);
  void drop_jobs(QueryLane& lane, bool keep_front);
  // The first lane in the ring whose front job may run now; ring_.end() if none.
  std::deque<std::shared_ptr<QueryLane>>::iterator runnable();
  static bool call_hook(const std::function<bool()>& hook);
  // Every change of a lane's state goes through here, so that parked() follows it.
  static void set_state(QueryLane& lane, QueryLane::State state) noexcept;

  const std::size_t max_jobs_per_lane_;
  const Clock::duration park_timeout_;
  const std::size_t max_expensive_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<QueryLane>> ring_;
  Parked parked_;
  bool stopping_ = false;
  std::size_t running_expensive_ = 0;
  std::atomic<std::size_t> jobs_total_{0};
};

}  // namespace relaycore::pipeline
