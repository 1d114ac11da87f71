// Verifier: everything that can be decided about an event before it reaches the writer. The
// verify threads run it on events queued by Relay::submit and by sessions, and a session runs
// it on the thread that read the frame when the transport hands it over with
// Session::try_on_message(), which saves the hand-off to a verify thread.
#pragma once

#include <memory>

#include "pipeline/jobs.hpp"
#include "pipeline/live_settings.hpp"
#include "pipeline/recent_ids.hpp"
#include "pipeline/stats_recorder.hpp"
#include "relaycore/storage.hpp"
#include "util/log.hpp"

namespace relaycore::pipeline {

// Sends the one OK of an event and records the ack latency.
void acknowledge(StatsRecorder& stats, const Log& log, const AckFn& ack, Clock::time_point received,
                 OkResult result);

// [Threading] check() may be called from many threads at once.
// [Blocking] check() runs the event policy, which may block, and may read storage.
class Verifier {
 public:
  // What the checks use, and nothing else of the Core. `storage` is read at each check, since
  // the Core sets it after building its Verifier.
  struct Deps {
    const LiveOptions& live;
    const Log& log;
    StatsRecorder& stats;
    RecentIds& recent_ids;
    const std::shared_ptr<Storage>& storage;
  };
  explicit Verifier(Deps deps) : deps_(deps) {}

  // True when the event goes on to the writer; otherwise it has been answered through the job's
  // ack (OK false, or OK true for a known duplicate or a shadow rejection) and counted.
  bool check(const IngestJob& job) const;

 private:
  Deps deps_;
};

}  // namespace relaycore::pipeline
