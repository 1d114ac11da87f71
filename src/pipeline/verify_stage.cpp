// Verify stage: the threads that run the Verifier on queued events, and the Verifier itself.
// The duplicate check comes before the signature check: a known id means identical content,
// and it spares a Schnorr verification for the most common resend. Only ids in RecentIds are
// looked up in storage; the writer's lookup catches older duplicates.
#include <algorithm>

#include "pipeline/stages.hpp"
#include "protocol/json_dom.hpp"

namespace relaycore::pipeline {
namespace {

// NIP-70: a ["-"] tag marks an event only its author may publish.
bool is_protected(const Event& event) {
  return std::any_of(event.tags().begin(), event.tags().end(),
                     [](const Tag& t) { return t.size() >= 1 && t[0] == json::kProtectedTag; });
}

// NIP-18: a repost (kind 6) or generic repost (kind 16) may carry the reposted event, as JSON, in
// its content. NIP-70 forbids that for a protected event, whoever reposts it.
bool embeds_protected_event(const Event& event, const Limits& limits) {
  if (event.kind() != 6 && event.kind() != 16) return false;
  return json::is_protected_event_json(event.content(), limits);
}

bool authenticated_as(const ClientInfo* client, const Pubkey& pubkey) {
  if (client == nullptr) return false;
  return std::find(client->authenticated.begin(), client->authenticated.end(), pubkey) !=
         client->authenticated.end();
}

}  // namespace

void acknowledge(StatsRecorder& stats, const Log& log, const AckFn& ack, Clock::time_point received,
                 OkResult result) {
  stats.ack_latency.record(Clock::now() - received);
  if (ack) call_host(log, "ack: sending an OK threw", [&] { ack(result); });
}

void VerifyStage::start(std::size_t threads) {
  threads_.start(threads, [this] { run(); });
}

void VerifyStage::join() { threads_.join(); }

void VerifyStage::run() {
  name_this_thread("rc-verify");
  IngestJob job;
  while (deps_.in.pop(job)) {
    process(job);
    job = IngestJob();
  }
}

void VerifyStage::process(IngestJob& job) {
  if (!deps_.verifier.check(job)) return;
  WriteJob write{std::move(job.event), std::move(job.ack), job.received, nullptr};
  if (!deps_.out.push(write)) {
    bump(deps_.stats.events_error);
    acknowledge(deps_.stats, deps_.log, write.ack, write.received,
                {false, "error: relay is shutting down"});
  }
}

bool Verifier::check(const IngestJob& job) const {
  const Deps& deps = deps_;
  const Event& ev = *job.event;
  auto reject = [&](const Status& s) {
    bump(deps.stats.events_rejected);
    acknowledge(deps.stats, deps.log, job.ack, job.received, {false, s.message()});
    return false;
  };
  const std::int64_t now = unix_now();
  const LiveSettings& live = deps.live.get();
  if (ev.kind() == 22242) {
    return reject(Status::invalid("kind 22242 is for AUTH messages, not EVENT"));
  }
  if (ev.created_at() > now + live.max_future_seconds) {
    return reject(Status::invalid("created_at is too far in the future"));
  }
  if (ev.expiration() && *ev.expiration() <= now) {
    return reject(Status::invalid("event has expired"));
  }
  // Only ids committed lately are looked up: a new event, by far the common case, costs no
  // storage read here. The storage confirms, since the event may have been removed since.
  if (ev.kind_class() != KindClass::kEphemeral && deps.recent_ids.contains(ev.id())) {
    Result<bool> known = deps.storage->contains(ev.id());
    // The event goes on to the writer, whose lookup catches the duplicate.
    if (!known.is_ok()) {
      deps.log.failure(LogLevel::kWarn, "verify: the duplicate lookup failed",
                       known.error().message());
    }
    if (known.is_ok() && *known) {
      bump(deps.stats.events_duplicate);
      acknowledge(deps.stats, deps.log, job.ack, job.received,
                  {true, "duplicate: already have this event"});
      return false;
    }
  }
  if (Status s = ev.verify(); !s) return reject(s);
  if (embeds_protected_event(ev, live.limits)) {
    return reject(Status::invalid("a repost must not embed a protected event"));
  }
  if (is_protected(ev) && !authenticated_as(job.client.get(), ev.pubkey())) {
    return reject(Status::auth_required("this event may only be published by its author"));
  }
  if (const auto& policy = live.event_policy) {
    PolicyDecision d;
    static const ClientInfo kNoClient;
    if (!call_host(deps.log, "verify: the event policy threw",
                   [&] { d = policy->check(job.event, job.client ? *job.client : kNoClient); })) {
      d = PolicyDecision::reject(Status::error("policy failed"));
    }
    switch (d.verdict) {
      case PolicyDecision::Verdict::kAccept:
        break;
      case PolicyDecision::Verdict::kShadowReject:
        bump(deps.stats.events_shadow_rejected);
        acknowledge(deps.stats, deps.log, job.ack, job.received, {true, ""});
        return false;
      case PolicyDecision::Verdict::kRequireAuth:
      case PolicyDecision::Verdict::kReject:
        return reject(d.status);
    }
  }
  return true;
}

}  // namespace relaycore::pipeline
