#include "pipeline/session_impl.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

#include "crypto/secp256k1_context.hpp"
#include "pipeline/neg_session.hpp"
#include "relaycore/hex.hpp"

namespace relaycore::pipeline {
namespace {

constexpr std::int64_t kAuthWindowSeconds = 600;

std::string random_challenge() {
  std::array<std::uint8_t, 16> bytes{};
  crypto::os_random(bytes.data(), bytes.size());
  return to_hex(bytes);
}

// Scheme and host are case-insensitive and a trailing slash is insignificant.
std::string normalize_url(std::string_view url) {
  std::string out(url);
  while (!out.empty() && out.back() == '/') out.pop_back();
  std::size_t host_end =
      out.find('/', out.find("://") == std::string::npos ? 0 : out.find("://") + 3);
  if (host_end == std::string::npos) host_end = out.size();
  std::transform(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(host_end), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

SessionImpl::SessionImpl(std::shared_ptr<Core> core, std::shared_ptr<Connection> connection,
                         ClientInfo client)
    : core_(std::move(core)),
      challenge_(random_challenge()),
      outbox_(std::make_shared<Outbox>(std::move(connection), core_->options.max_outbound_bytes,
                                       core_->log)),
      client_(std::make_shared<const ClientInfo>(std::move(client))) {
  bump(core_->stats.sessions_open);
  bump(core_->stats.sessions_total);
}

SessionImpl::~SessionImpl() {
  if (!ended_.load()) core_->stats.sessions_open.fetch_sub(1, std::memory_order_relaxed);
  if (lane_) core_->scheduler.close_lane(lane_);
}

void SessionImpl::start(bool counted) {
  std::weak_ptr<SessionImpl> weak = weak_from_this();
  outbox_->set_on_closed([weak](bool slow) {
    if (std::shared_ptr<SessionImpl> self = weak.lock()) {
      if (slow) bump(self->core_->stats.slow_consumer_disconnects);
      self->end();
    }
  });
  std::weak_ptr<Outbox> outbox = outbox_;
  QueryLane::Hooks hooks;
  hooks.drained = [outbox] {
    std::shared_ptr<Outbox> o = outbox.lock();
    return o && o->drained();
  };
  hooks.expired = [outbox] {
    if (std::shared_ptr<Outbox> o = outbox.lock()) o->close_slow_consumer();
  };
  lane_ = core_->scheduler.open_lane(std::move(hooks));
  if (counted && core_->rate_limiter) {
    Result<ConnectionSlot> slot = core_->rate_limiter->open_connection(*client_);
    if (!slot) {
      send(Frame(notice_message(slot.error().message())));
      outbox_->close(slot.error().message());
      return;
    }
    slot_ = std::move(slot).value();
  }
  if (core_->live.get().auth_on_connect) send_challenge();
}

std::shared_ptr<const ClientInfo> SessionImpl::client() const {
  std::lock_guard lock(mu_);
  return client_;
}

Status SessionImpl::allow(Verb verb, const ClientInfo& client) const {
  return core_->rate_limiter ? core_->rate_limiter->allow(verb, client) : Status::ok();
}

std::optional<ClientMessage> SessionImpl::parse(std::string_view frame, const Limits& limits) {
  Result<ClientMessage, MessageError> parsed = parse_client_message(frame, limits);
  if (!parsed) {
    bump(core_->stats.frames_invalid);
    core_->stats.note_refusal(parsed.error().status.message());
    send(Frame(error_reply(parsed.error())));
    return std::nullopt;
  }
  return std::move(parsed).value();
}

void SessionImpl::on_message(std::string_view frame) {
  if (outbox_->closed()) return;
  std::optional<ClientMessage> msg = parse(frame, core_->live.get().limits);
  if (!msg) return;
  std::visit([this](auto&& m) { handle(std::move(m)); }, std::move(*msg));
}

bool SessionImpl::try_on_message(std::string_view frame) {
  if (outbox_->closed()) return true;
  const LiveSettings& live = core_->live.get();
  // The filter policy runs on REQ, COUNT and NEG-OPEN, and may block: those frames, and any
  // frame that does not plainly open as an EVENT, go to on_message() while one is set.
  if (live.filter_policy && !starts_with(frame, "[\"EVENT\"")) return false;
  std::optional<ClientMessage> msg = parse(frame, live.limits);
  if (!msg) return true;
  // With a filter policy set, only a frame opening as an EVENT got this far.
  if (auto* event = std::get_if<EventMessage>(&*msg)) return try_handle(std::move(*event));
  std::visit([this](auto&& m) { handle(std::move(m)); }, std::move(*msg));
  return true;
}

void SessionImpl::on_drain() {
  // Called after every write the transport completes: nearly always nothing is parked, and
  // that costs one atomic load, not the outbox's lock and the scheduler's.
  if (lane_->parked() && outbox_->drained()) core_->scheduler.resume(lane_);
}

std::optional<IngestJob> SessionImpl::ingest_job(EventMessage&& msg) {
  bump(core_->stats.frames_event);
  IngestJob job;
  job.client = client();
  if (Status s = allow(Verb::kEvent, *job.client); !s) {
    refuse_event(msg.event->id_hex(), s.message());
    return std::nullopt;
  }
  job.event = std::move(msg.event);
  job.received = Clock::now();
  job.ack = [weak = weak_from_this(), event = job.event](const OkResult& r) {
    std::shared_ptr<SessionImpl> self = weak.lock();
    if (!self) return;
    if (r.accepted) {
      self->send(Frame(ok_message(event->id_hex(), true, r.message)));
    } else {
      self->refuse_event(event->id_hex(), r.message);
    }
    if (starts_with(r.message, "auth-required:")) self->send_challenge();
  };
  return job;
}

void SessionImpl::handle(EventMessage&& msg) {
  std::optional<IngestJob> job = ingest_job(std::move(msg));
  if (!job) return;
  if (core_->stopping.load() || !core_->ingest.push(*job)) {
    refuse_event(job->event->id_hex(), "error: relay is shutting down");
  }
}

bool SessionImpl::try_handle(EventMessage&& msg) {
  if (core_->live.get().event_policy) {
    ReservedPlace<IngestJob> place(core_->ingest);
    if (!place) return false;
    std::optional<IngestJob> job = ingest_job(std::move(msg));
    if (!job) return true;
    if (core_->stopping.load() || !place.fill(*job)) {
      refuse_event(job->event->id_hex(), "error: relay is shutting down");
    }
    return true;
  }
  ReservedPlace<WriteJob> place(core_->writes);
  if (!place) return false;
  std::optional<IngestJob> job = ingest_job(std::move(msg));
  if (!job || !core_->verifier.check(*job)) return true;
  WriteJob write{std::move(job->event), std::move(job->ack), job->received, nullptr};
  if (core_->stopping.load() || !place.fill(write)) {
    bump(core_->stats.events_error);
    acknowledge(core_->stats, core_->log, write.ack, write.received,
                {false, "error: relay is shutting down"});
  }
  return true;
}

PolicyDecision SessionImpl::check_filters(const std::vector<Filter>& filters) {
  const std::shared_ptr<FilterPolicy>& policy = core_->live.get().filter_policy;
  if (!policy) return PolicyDecision::accept();
  std::shared_ptr<const ClientInfo> client = this->client();
  PolicyDecision d;
  if (!call_host(core_->log, "session: the filter policy threw",
                 [&] { d = policy->check(filters, *client); })) {
    d = PolicyDecision::reject(Status::error("policy failed"));
  }
  return d;
}

bool SessionImpl::allow_filters(const std::string& sub_id, const std::vector<Filter>& filters) {
  const PolicyDecision d = check_filters(filters);
  switch (d.verdict) {
    case PolicyDecision::Verdict::kAccept:
      return true;
    case PolicyDecision::Verdict::kShadowReject:
      // Looks served, finds nothing.
      send(Frame(eose_message(sub_id)));
      return false;
    case PolicyDecision::Verdict::kRequireAuth:
      refuse_sub(sub_id, d.status.message());
      send_challenge();
      return false;
    case PolicyDecision::Verdict::kReject:
      break;
  }
  refuse_sub(sub_id, d.status.message());
  return false;
}

void SessionImpl::handle(ReqMessage&& msg) {
  bump(core_->stats.frames_req);
  if (core_->stopping.load()) {
    refuse_sub(msg.sub_id, "error: relay is shutting down");
    return;
  }
  if (Status s = allow(Verb::kReq, *client()); !s) {
    refuse_sub(msg.sub_id, s.message());
    return;
  }
  if (!allow_filters(msg.sub_id, msg.filters)) return;
  subscribe(msg.sub_id, std::move(msg.filters));
}

void SessionImpl::subscribe(const std::string& sub_id, std::vector<Filter> filters) {
  std::shared_ptr<Subscription> replaced;
  std::shared_ptr<Subscription> sub;
  const std::size_t max_subscriptions = core_->live.get().limits.max_subscriptions;
  {
    std::lock_guard lock(mu_);
    auto it = subs_.find(sub_id);
    if (it != subs_.end()) {
      replaced = std::move(it->second);
      subs_.erase(it);
    }
    if (replaced || subs_.size() < max_subscriptions) {
      sub = std::make_shared<Subscription>(core_->next_sub_key.fetch_add(1), sub_id,
                                           std::move(filters), outbox_,
                                           core_->options.max_outbound_bytes);
      subs_[sub_id] = sub;
    }
  }
  if (replaced) {
    replaced->cancel();
    core_->index.remove(replaced);
  }
  if (!sub) {
    refuse_sub(sub_id, "rate-limited: too many subscriptions (max " +
                           std::to_string(max_subscriptions) + ")");
    return;
  }
  HistoryJob job;
  job.max_seq = core_->index.add(sub);
  job.sub = sub;
  if (!submit(sub->sub_id, std::move(job))) {
    {
      std::lock_guard lock(mu_);
      auto it = subs_.find(sub->sub_id);
      if (it != subs_.end() && it->second == sub) subs_.erase(it);
    }
    sub->cancel();
    core_->index.remove(sub);
  }
}

Status SessionImpl::queue(QueryJob job) {
  switch (core_->scheduler.submit(lane_, std::move(job))) {
    case QueryScheduler::Submit::kQueued:
      return Status::ok();
    case QueryScheduler::Submit::kFull:
      return Status::rate_limited("too many queries waiting (max " +
                                  std::to_string(core_->options.max_queued_queries) + ")");
    case QueryScheduler::Submit::kStopped:
      break;
  }
  return Status::error("relay is shutting down");
}

bool SessionImpl::submit(const std::string& sub_id, QueryJob job) {
  Status s = queue(std::move(job));
  if (!s) refuse_sub(sub_id, s.message());
  return s.is_ok();
}

void SessionImpl::handle(CloseMessage&& msg) {
  bump(core_->stats.frames_close);
  std::shared_ptr<Subscription> sub;
  {
    std::lock_guard lock(mu_);
    auto it = subs_.find(msg.sub_id);
    if (it == subs_.end()) return;
    sub = std::move(it->second);
    subs_.erase(it);
  }
  sub->cancel();
  core_->index.remove(sub);
}

void SessionImpl::handle(CountMessage&& msg) {
  bump(core_->stats.frames_count);
  if (Status s = allow(Verb::kCount, *client()); !s) {
    refuse_sub(msg.sub_id, s.message());
    return;
  }
  if (!allow_filters(msg.sub_id, msg.filters)) return;
  CountJob job;
  job.outbox = outbox_;
  job.sub_id = msg.sub_id;
  job.filters = std::move(msg.filters);
  if (core_->stopping.load()) {
    refuse_sub(msg.sub_id, "error: relay is shutting down");
    return;
  }
  submit(msg.sub_id, std::move(job));
}

Status SessionImpl::check_auth(const Event& event) const {
  if (event.kind() != 22242) return Status::invalid("auth event must be kind 22242");
  if (Status s = event.verify(); !s) return s;
  const std::int64_t now = unix_now();
  if (event.created_at() < now - kAuthWindowSeconds ||
      event.created_at() > now + kAuthWindowSeconds) {
    return Status::invalid("auth event created_at is not within 10 minutes of now");
  }
  if (event.first_tag_value("challenge").value_or("") != challenge_) {
    return Status::invalid("auth event does not carry this connection's challenge");
  }
  std::optional<std::string_view> relay = event.first_tag_value("relay");
  if (!relay || relay->empty()) return Status::invalid("auth event has no relay tag");
  const std::string& url = core_->options.relay_url;
  if (!url.empty() && normalize_url(*relay) != normalize_url(url)) {
    return Status::invalid("auth event is for another relay");
  }
  return Status::ok();
}

void SessionImpl::handle(AuthMessage&& msg) {
  bump(core_->stats.frames_auth);
  Status s = check_auth(*msg.event);
  if (s) {
    std::lock_guard lock(mu_);
    auto next = std::make_shared<ClientInfo>(*client_);
    if (std::find(next->authenticated.begin(), next->authenticated.end(), msg.event->pubkey()) ==
        next->authenticated.end()) {
      next->authenticated.push_back(msg.event->pubkey());
    }
    client_ = std::move(next);
  }
  if (s) {
    send(Frame(ok_message(msg.event->id_hex(), true, s.message())));
  } else {
    refuse_event(msg.event->id_hex(), s.message());
  }
}

void SessionImpl::refuse_event(std::string_view event_id_hex, std::string_view message) {
  core_->stats.note_refusal(message);
  send(Frame(ok_message(event_id_hex, false, message)));
}

void SessionImpl::refuse_sub(std::string_view sub_id, std::string_view message) {
  core_->stats.note_refusal(message);
  send(Frame(closed_message(sub_id, message)));
}

void SessionImpl::handle(NegOpenMessage&& msg) {
  const NegentropyLimits& limits = core_->options.negentropy;
  auto refuse = [&](const Status& why) { send(Frame(neg_err_message(msg.sub_id, why.message()))); };
  if (limits.max_sessions == 0) {
    return refuse(Status::blocked("negentropy syncing (NIP-77) is turned off on this relay"));
  }
  if (core_->stopping.load()) return refuse(Status::error("relay is shutting down"));
  // A sync is a query, and counts as a REQ.
  if (Status s = allow(Verb::kReq, *client()); !s) return refuse(s);
  if (msg.filter.search) {
    return refuse(Status::blocked("a search filter cannot be synced; drop \"search\""));
  }
  std::vector<Filter> filters{msg.filter};
  const PolicyDecision d = check_filters(filters);
  if (d.verdict == PolicyDecision::Verdict::kReject ||
      d.verdict == PolicyDecision::Verdict::kRequireAuth) {
    refuse(d.status);
    if (d.verdict == PolicyDecision::Verdict::kRequireAuth) send_challenge();
    return;
  }
  // A shadow rejection syncs against nothing, as its REQ finds nothing.
  auto neg = std::make_shared<NegSession>(msg.sub_id, std::move(filters.front()), outbox_,
                                          d.verdict == PolicyDecision::Verdict::kShadowReject);
  std::shared_ptr<NegSession> replaced;
  bool full = false;
  {
    std::lock_guard lock(mu_);
    auto it = negs_.find(msg.sub_id);
    if (it != negs_.end()) {
      replaced = std::move(it->second);
      negs_.erase(it);
    }
    std::erase_if(negs_, [](const auto& entry) { return entry.second->closed(); });
    full = negs_.size() >= limits.max_sessions;
    if (!full) negs_[msg.sub_id] = neg;
  }
  if (replaced) replaced->close();
  if (full) {
    return refuse(Status::rate_limited(
        fmt::format("too many negentropy sessions open (max {})", limits.max_sessions)));
  }
  core_->neg_reaper.add(neg);
  submit_neg(neg, std::move(msg.message));
}

void SessionImpl::handle(NegMsgMessage&& msg) {
  std::shared_ptr<NegSession> neg;
  {
    std::lock_guard lock(mu_);
    auto it = negs_.find(msg.sub_id);
    if (it != negs_.end()) {
      neg = it->second;
      if (neg->closed()) {
        negs_.erase(it);
        neg.reset();
      }
    }
  }
  if (!neg) {
    send(Frame(neg_err_message(
        msg.sub_id, "closed: no open negentropy session with this id; send NEG-OPEN first")));
    return;
  }
  submit_neg(neg, std::move(msg.message));
}

void SessionImpl::submit_neg(const std::shared_ptr<NegSession>& neg, std::string message) {
  if (!neg->begin_job()) {
    send(Frame(neg_err_message(neg->sub_id, "closed: the negentropy session was closed")));
    return;
  }
  Status s = queue(NegJob{neg, std::move(message)});
  if (s) return;
  neg->end_job();
  if (neg->close()) send(Frame(neg_err_message(neg->sub_id, s.message())));
}

void SessionImpl::handle(NegCloseMessage&& msg) {
  std::shared_ptr<NegSession> neg;
  {
    std::lock_guard lock(mu_);
    auto it = negs_.find(msg.sub_id);
    if (it == negs_.end()) return;
    neg = std::move(it->second);
    negs_.erase(it);
  }
  neg->close();
}

void SessionImpl::send_challenge() { send(Frame(auth_challenge_message(challenge_))); }

void SessionImpl::end() {
  if (ended_.exchange(true)) return;
  core_->stats.sessions_open.fetch_sub(1, std::memory_order_relaxed);
  core_->scheduler.close_lane(lane_);
  std::unordered_map<std::string, std::shared_ptr<Subscription>> subs;
  std::unordered_map<std::string, std::shared_ptr<NegSession>> negs;
  {
    std::lock_guard lock(mu_);
    subs.swap(subs_);
    negs.swap(negs_);
    slot_.release();
  }
  for (auto& [id, neg] : negs) neg->close();
  for (auto& [id, sub] : subs) {
    sub->cancel();
    core_->index.remove(sub);
  }
}

void SessionImpl::on_close() {
  outbox_->detach();
  end();
}

}  // namespace relaycore::pipeline
