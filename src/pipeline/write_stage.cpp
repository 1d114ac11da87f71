// Write stage: the single writer. It takes whatever is queued (up to max_write_batch) and
// commits it as one transaction (group commit), hands the batch's audit records to the bounded
// audit sink (waiting if it is full), and only then acks. Dispatch follows the acks (deferred)
// or precedes them (inline). Between batches it purges expired events, runs erases and, when
// idle, retention steps, which are audited and reported to change listeners as well, and steps
// of the storage's upkeep (Storage::maintain).
#include <algorithm>

#include "pipeline/stages.hpp"

#include "pipeline/outbox.hpp"
#include "util/thread_priority.hpp"

namespace relaycore::pipeline {
namespace {

constexpr auto kIdleWake = std::chrono::seconds(1);

AuditRecord audit_record(AuditAction action, std::int64_t now, std::uint64_t seq, const EventId& id,
                         std::uint16_t kind, const Pubkey& actor) {
  AuditRecord r;
  r.event_seq = seq;
  r.timestamp = now;
  r.action = action;
  r.event_id = id;
  r.kind = kind;
  r.actor = actor;
  return r;
}

// The audit action that records this removal.
AuditAction removal_action(const RemovedEvent& gone) {
  switch (gone.reason) {
    case RemovalReason::kReplaced:
      return AuditAction::kEventReplaced;
    case RemovalReason::kDeleted:
      return AuditAction::kEventDeleted;
    case RemovalReason::kExpired:
      return AuditAction::kEventExpired;
    case RemovalReason::kRetention:
      if (gone.rule == RetentionRule::kMaxAge) return AuditAction::kRetentionMaxAge;
      if (gone.rule == RetentionRule::kMaxPerAuthor) return AuditAction::kRetentionMaxPerAuthor;
      return AuditAction::kRetentionMaxBytes;
    case RemovalReason::kErased:
      break;
  }
  return AuditAction::kEventErased;
}

}  // namespace

void WriteStage::start() {
  thread_ = std::thread([this] { run(); });
}

void WriteStage::join() {
  if (thread_.joinable()) thread_.join();
}

void WriteStage::run() {
  // The commit delay is a timed sleep with clients' OKs waiting on it (hold_open).
  if (!tighten_this_thread_timer_slack()) {
    deps_.log.write(LogLevel::kDebug, "write: the writer's timer slack is the system's default");
  }
  name_this_thread("rc-write");
  std::vector<WriteJob> jobs;
  auto next_purge = Clock::now();
  auto next_retention = Clock::now();
  const auto purge_every = std::chrono::seconds(deps_.options.purge_interval_seconds);
  for (;;) {
    // While retention or upkeep has steps to take, nothing queued means idle at once.
    const bool pending = retention_.pending() || maintenance_pending_;
    const auto wait = pending ? Clock::duration::zero() : Clock::duration(kIdleWake);
    if (!deps_.in.pop_batch_for(jobs, deps_.options.max_write_batch, wait)) break;
    hold_open(jobs, pending);
    if (!jobs.empty()) run_jobs(jobs);
    if (purge_every.count() > 0 && Clock::now() >= next_purge) {
      purge_expired();
      next_purge = Clock::now() + purge_every;
    }
    // In idle time; under steady load, a step a second, so that retention and upkeep still
    // move.
    if (jobs.empty() || Clock::now() >= next_retention) {
      retain();
      maintain();
      next_retention = Clock::now() + kIdleWake;
    }
  }
}

// A commit costs a sync and a set of B-tree pages written whatever it holds, so at moderate load,
// where each commit holds a few events, fewer and larger commits save CPU and disk writes per
// event; their OKs come up to the delay later. The delay applies only while the last batch held
// more than one job: a lone client that waits for each OK before sending the next makes batches
// of one, and holding those open would only slow it. The writer sleeps through the delay rather
// than waking for each arriving job (a wake-up per event is part of what the delay saves); only
// closing the queue ends the sleep early. While upkeep has steps to take, the writer looks at the
// queue between them without waiting; finding it empty then says nothing about the clients.
void WriteStage::hold_open(std::vector<WriteJob>& jobs, bool polled) {
  if (jobs.empty() && polled) return;
  const std::size_t max = deps_.options.max_write_batch;
  const auto delay = std::chrono::microseconds(deps_.options.commit_delay_micros);
  if (delay.count() > 0 && last_taken_ > 1 && !jobs.empty() && jobs.size() < max) {
    deps_.in.wait_closed_for(delay);
    deps_.in.take_more(jobs, max);
  }
  last_taken_ = jobs.size();
}

void WriteStage::run_jobs(std::vector<WriteJob>& jobs) {
  auto begin = jobs.begin();
  while (begin != jobs.end()) {
    auto end =
        std::find_if(begin, jobs.end(), [](const WriteJob& j) { return j.erase != nullptr; });
    if (begin != end) process(std::span<WriteJob>(begin, end));
    if (end == jobs.end()) break;
    erase(*end->erase);
    begin = end + 1;
  }
}

void WriteStage::purge_expired() {
  Result<std::vector<RemovedEvent>> purged = deps_.storage->purge_expired(unix_now());
  if (!purged) {
    deps_.log.failure(LogLevel::kError, "write: purging expired events failed",
                      purged.error().message());
    return;
  }
  const std::size_t n = purged->size();
  if (n == 0) return;
  bump(deps_.stats.expired_purged, n);
  deps_.log.write(LogLevel::kDebug, "write: purged {} expired events", n);
  // A failure is logged by audit(); the purge itself stands.
  (void)finish_removals(std::move(purged).value());
}

void WriteStage::retain() {
  Result<std::vector<RemovedEvent>> removed =
      retention_.step(deps_.live.get().retention, unix_now(), Clock::now());
  if (!removed) {
    deps_.log.failure(LogLevel::kError, "write: retention failed", removed.error().message());
    return;
  }
  if (removed->empty()) return;
  bump(deps_.stats.retention_removed, removed->size());
  for (const RemovedEvent& r : *removed) {
    switch (r.rule) {
      case RetentionRule::kMaxAge:
        bump(deps_.stats.retention_removed_max_age, 1);
        break;
      case RetentionRule::kMaxPerAuthor:
        bump(deps_.stats.retention_removed_max_per_author, 1);
        break;
      case RetentionRule::kMaxBytes:
        bump(deps_.stats.retention_removed_max_bytes, 1);
        break;
      case RetentionRule::kNone:
        break;
    }
  }
  deps_.log.write(LogLevel::kDebug, "write: retention removed {} events", removed->size());
  // A failure is logged by audit(); the removals stand.
  (void)finish_removals(std::move(removed).value());
}

void WriteStage::maintain() {
  Result<bool> more = deps_.storage->maintain();
  if (!more.is_ok()) {
    deps_.log.failure(LogLevel::kError, "write: storage upkeep failed", more.error().message());
  }
  // A failed step is tried again at the next idle second, not at once.
  maintenance_pending_ = more.is_ok() && *more;
}

void WriteStage::erase(EraseJob& job) {
  Result<std::vector<RemovedEvent>> erased = deps_.storage->erase(job.ids);
  if (!erased) {
    deps_.log.failure(LogLevel::kError, "write: erasing events failed", erased.error().message());
    job.done(std::move(erased).error());
    return;
  }
  deps_.log.write(LogLevel::kInfo, "write: erased {} of {} events", erased->size(), job.ids.size());
  Status audited = finish_removals(*erased);
  if (!audited) {
    job.done(Status::error(fmt::format(
        "the events were erased, but their audit records were not written: {}", audited.detail())));
    return;
  }
  job.done(std::move(erased).value());
}

Status WriteStage::finish_removals(std::vector<RemovedEvent> removed) {
  if (removed.empty()) return Status::ok();
  const std::int64_t now = unix_now();
  std::vector<AuditRecord> records;
  records.reserve(removed.size());
  for (const RemovedEvent& gone : removed) {
    // The expired event's author set its expiration; an erase or a retention removal has no
    // author behind it: the operator caused it.
    const Pubkey actor = gone.reason == RemovalReason::kExpired ? gone.pubkey : Pubkey{};
    records.push_back(audit_record(removal_action(gone), now, gone.seq, gone.id, gone.kind, actor));
  }
  Status audited = audit(std::move(records));
  if (!dispatcher_.has_audience()) return audited;
  DispatchJob job;
  job.removed = std::move(removed);
  job.committed = Clock::now();
  if (deps_.options.dispatch == DispatchMode::kInline) {
    dispatcher_.process(job);
  } else {
    deps_.out.push(job);
  }
  return audited;
}

Status WriteStage::audit(std::vector<AuditRecord> records) {
  const Deps& d = deps_;
  if (!d.audit || records.empty()) return Status::ok();
  const auto before = Clock::now();
  Status audited = d.audit->enqueue(std::move(records));
  const auto waited = Clock::now() - before;
  if (waited > std::chrono::milliseconds(1)) {
    bump(d.stats.audit_waits);
    bump(d.stats.audit_wait_us,
         static_cast<std::uint64_t>(
             std::chrono::duration_cast<std::chrono::microseconds>(waited).count()));
  }
  if (!audited) {
    // Committed but not audited: say so rather than claim the full guarantee.
    d.log.failure(LogLevel::kError, "write: handing audit records to the sink failed",
                  audited.message());
  }
  return audited;
}

void WriteStage::process(std::span<WriteJob> jobs) {
  const Deps& d = deps_;
  std::vector<EventPtr>& to_store = to_store_;
  std::vector<WriteResult>& results = results_;
  std::vector<OkResult>& oks = oks_;
  to_store.clear();
  for (const WriteJob& j : jobs) {
    if (j.event->kind_class() != KindClass::kEphemeral) to_store.push_back(j.event);
  }
  results.clear();
  Status stored = Status::ok();
  if (!to_store.empty()) {
    stored = d.storage->write_batch(to_store, results);
    if (stored && results.size() != to_store.size()) {
      stored = Status::error("storage returned the wrong number of results");
    }
    d.stats.note_batch(to_store.size());
    // The clients hear only "error: could not store the event"; the reason is for the operator.
    if (!stored) {
      d.log.failure(LogLevel::kError, "write: storing events failed", stored.message());
    }
  }

  if (stored) {
    std::uint64_t last = 0;
    for (const WriteResult& r : results) last = std::max(last, r.seq);
    // Before any ack: a REQ that follows an OK must find the event in its history.
    if (last != 0) d.index.set_committed(last);
  }

  const std::int64_t now = unix_now();
  oks.assign(jobs.size(), OkResult{});
  std::vector<AuditRecord> records;
  records.reserve(results.size());
  DispatchJob dispatch;
  dispatch.local = true;
  dispatch.events.reserve(jobs.size());
  dispatch.seqs.reserve(jobs.size());
  std::size_t k = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const EventPtr& ev = jobs[i].event;
    if (ev->kind_class() == KindClass::kEphemeral) {
      bump(d.stats.events_ephemeral);
      oks[i] = {true, ""};
      dispatch.events.push_back(ev);
      dispatch.seqs.push_back(0);
      continue;
    }
    if (!stored) {
      bump(d.stats.events_error);
      oks[i] = {false, "error: could not store the event"};
      continue;
    }
    const WriteResult& r = results[k++];
    if (r.outcome == WriteOutcome::kStored || r.outcome == WriteOutcome::kReplaced ||
        r.outcome == WriteOutcome::kDuplicate) {
      d.recent_ids.add(ev->id());
    }
    switch (r.outcome) {
      case WriteOutcome::kStored:
      case WriteOutcome::kReplaced: {
        bump(d.stats.events_stored);
        if (r.outcome == WriteOutcome::kReplaced) bump(d.stats.events_replaced);
        oks[i] = {true, ""};
        records.push_back(audit_record(AuditAction::kEventCreated, now, r.seq, ev->id(), ev->kind(),
                                       ev->pubkey()));
        for (const RemovedEvent& gone : r.removed) {
          records.push_back(
              audit_record(removal_action(gone), now, gone.seq, gone.id, gone.kind, ev->pubkey()));
          dispatch.removed.push_back(gone);
        }
        dispatch.events.push_back(ev);
        dispatch.seqs.push_back(r.seq);
        break;
      }
      case WriteOutcome::kDuplicate:
        bump(d.stats.events_duplicate);
        oks[i] = {true, "duplicate: already have this event"};
        break;
      case WriteOutcome::kDeleted:
        bump(d.stats.events_deleted);
        oks[i] = {false, "blocked: this event was deleted by its author"};
        break;
      case WriteOutcome::kRejected:
        // An older version of a replaceable event is refused with "duplicate:": count it so.
        bump(r.status.code() == StatusCode::kDuplicate ? d.stats.events_duplicate
                                                       : d.stats.events_rejected);
        oks[i] = {false, r.status.is_ok() ? "error: not stored" : r.status.message()};
        break;
    }
  }

  if (Status audited = audit(std::move(records)); !audited) {
    // Reconciliation on the next open appends the missing records of stored events.
    for (OkResult& ok : oks) {
      if (ok.accepted && ok.message.empty()) ok = {false, "error: audit log unavailable"};
    }
  }

  dispatch.committed = Clock::now();
  const bool inline_dispatch = d.options.dispatch == DispatchMode::kInline;
  // Without an audience the dispatch thread is not woken at all.
  const bool work =
      (!dispatch.events.empty() || !dispatch.removed.empty()) && dispatcher_.has_audience();
  if (inline_dispatch && work) dispatcher_.process(dispatch);
  {
    // A connection with several events in this commit gets their OKs in one write, and
    // submit_async's completions wake the callback thread once.
    FlushScope scope;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      acknowledge(d.stats, d.log, jobs[i].ack, jobs[i].received, std::move(oks[i]));
    }
  }
  if (!inline_dispatch && work) d.out.push(dispatch);
  // The events' last references go with their job, not with the next batch.
  to_store.clear();
}

}  // namespace relaycore::pipeline
