// NIP-77 sync sessions. A NegSession is one NEG-OPEN of a connection: its filter, and from its
// first job on, the records it reconciles over. The NegReaper closes the sessions a client
// leaves idle, so that their records do not stay in memory.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/jobs.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/negentropy.hpp"

namespace relaycore::pipeline {

class Outbox;

class NegSession {
 public:
  NegSession(std::string sub_id, Filter filter, std::weak_ptr<Outbox> outbox, bool empty);

  const std::string sub_id;
  const Filter filter;
  const std::weak_ptr<Outbox> outbox;
  // Served as if nothing matched (a FilterPolicy's shadow reject).
  const bool empty;

  // The reconciler, created by the first job. Jobs of one connection run one at a time, in
  // order, and only while begin_job() holds the session open, so they use it without a lock.
  std::unique_ptr<Negentropy> neg;

  // Counts a job queued for the session; false (and nothing counted) when it is closed.
  bool begin_job();
  // The job is done: the idle clock starts again, and a closed session frees its records.
  void end_job();
  // Closes the session (its records are freed once no job runs); true the first time.
  bool close();
  bool closed() const;
  // Closes the session when no job is queued or running and the last one ended before
  // `idle_since`; true when it did.
  bool close_if_idle(Clock::time_point idle_since);

 private:
  mutable std::mutex mu_;
  bool closed_ = false;
  std::size_t jobs_ = 0;
  Clock::time_point last_active_;
};

// Closes idle sessions with NEG-ERR "closed: ...", on a thread of its own that looks at them a
// few times per idle timeout.
class NegReaper {
 public:
  explicit NegReaper(Clock::duration idle_timeout);
  ~NegReaper();

  // Watches the session until it is closed or gone. Starts the thread on first use.
  void add(std::weak_ptr<NegSession> session);
  // Stops the thread; sessions added later are no longer watched.
  void stop();

 private:
  void run();
  void sweep(Clock::time_point now);

  const Clock::duration idle_timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::weak_ptr<NegSession>> sessions_;
  std::thread thread_;
};

}  // namespace relaycore::pipeline
