#include "pipeline/session_impl.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <thread>

#include "crypto/secp256k1_context.hpp"
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
      client_(std::make_shared<const ClientInfo>(std::move(client))),
      connection_(std::move(connection)) {
  bump(core_->stats.sessions_open);
  bump(core_->stats.sessions_total);
}

SessionImpl::~SessionImpl() {
  if (!closed()) core_->stats.sessions_open.fetch_sub(1, std::memory_order_relaxed);
}

// A session stops counting as open when it is closed, not when the last pipeline task that
// still holds it lets go. Called with out_mu_ held; false if it was already closed.
bool SessionImpl::mark_closed() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return false;
  core_->stats.sessions_open.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void SessionImpl::start() {
  if (core_->options.auth_on_connect) send_challenge();
}

void SessionImpl::on_message(std::string_view frame) {
  if (closed()) return;
  Result<ClientMessage, MessageError> parsed = parse_client_message(frame, core_->options.limits);
  if (!parsed) {
    bump(core_->stats.frames_invalid);
    send(Frame(error_reply(parsed.error())));
    return;
  }
  std::visit([this](auto&& msg) { handle(std::move(msg)); }, std::move(parsed).value());
}

void SessionImpl::handle(EventMessage&& msg) {
  bump(core_->stats.frames_event);
  IngestJob job;
  job.event = msg.event;
  {
    std::lock_guard lock(mu_);
    job.client = client_;
  }
  job.received = Clock::now();
  job.ack = [weak = weak_from_this(), event = msg.event](const OkResult& r) {
    std::shared_ptr<SessionImpl> self = weak.lock();
    if (!self) return;
    self->send(Frame(ok_message(event->id_hex(), r.accepted, r.message)));
    if (starts_with(r.message, "auth-required:")) self->send_challenge();
  };
  if (core_->stopping.load() || !core_->ingest.push(job)) {
    send(Frame(ok_message(msg.event->id_hex(), false, "error: relay is shutting down")));
  }
}

bool SessionImpl::allow_filters(const std::string& sub_id, const std::vector<Filter>& filters) {
  const auto& policy = core_->options.filter_policy;
  if (!policy) return true;
  std::shared_ptr<const ClientInfo> client;
  {
    std::lock_guard lock(mu_);
    client = client_;
  }
  PolicyDecision d;
  if (!call_host([&] { d = policy->check(filters, *client); })) {
    d = PolicyDecision::reject(Status::error("policy failed"));
  }
  switch (d.verdict) {
    case PolicyDecision::Verdict::kAccept:
      return true;
    case PolicyDecision::Verdict::kShadowReject:
      // Looks served, finds nothing.
      send(Frame(eose_message(sub_id)));
      return false;
    case PolicyDecision::Verdict::kRequireAuth:
      send(Frame(closed_message(sub_id, d.status.message())));
      send_challenge();
      return false;
    case PolicyDecision::Verdict::kReject:
      break;
  }
  send(Frame(closed_message(sub_id, d.status.message())));
  return false;
}

void SessionImpl::handle(ReqMessage&& msg) {
  bump(core_->stats.frames_req);
  if (core_->stopping.load()) {
    send(Frame(closed_message(msg.sub_id, "error: relay is shutting down")));
    return;
  }
  if (!allow_filters(msg.sub_id, msg.filters)) return;
  std::shared_ptr<Subscription> replaced;
  std::shared_ptr<Subscription> sub;
  {
    std::lock_guard lock(mu_);
    auto it = subs_.find(msg.sub_id);
    if (it != subs_.end()) {
      replaced = std::move(it->second);
      subs_.erase(it);
    }
    if (replaced || subs_.size() < core_->options.limits.max_subscriptions) {
      sub = std::make_shared<Subscription>(core_->next_sub_key.fetch_add(1), msg.sub_id,
                                           std::move(msg.filters), weak_from_this(),
                                           core_->options.max_outbound_bytes);
      subs_[msg.sub_id] = sub;
    }
  }
  if (replaced) {
    replaced->cancel();
    core_->index.remove(replaced);
  }
  if (!sub) {
    send(Frame(closed_message(msg.sub_id,
                              "rate-limited: too many subscriptions (max " +
                                  std::to_string(core_->options.limits.max_subscriptions) + ")")));
    return;
  }
  QueryJob job;
  job.kind = QueryJob::Kind::kReq;
  job.max_seq = core_->index.add(sub);
  job.sub = sub;
  if (!core_->queries.push(job)) {
    sub->cancel();
    core_->index.remove(sub);
    send(Frame(closed_message(sub->sub_id, "error: relay is shutting down")));
  }
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
  if (!allow_filters(msg.sub_id, msg.filters)) return;
  QueryJob job;
  job.kind = QueryJob::Kind::kCount;
  job.session = weak_from_this();
  job.sub_id = msg.sub_id;
  job.filters = std::move(msg.filters);
  if (core_->stopping.load() || !core_->queries.push(job)) {
    send(Frame(closed_message(msg.sub_id, "error: relay is shutting down")));
  }
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
  send(Frame(ok_message(msg.event->id_hex(), s.is_ok(), s.message())));
}

void SessionImpl::send_challenge() { send(Frame(auth_challenge_message(challenge_))); }

void SessionImpl::enqueue(Frame frame) {
  std::lock_guard lock(out_mu_);
  if (closed()) return;
  out_.push_back(std::move(frame));
}

void SessionImpl::flush() {
  std::unique_lock lock(out_mu_);
  if (flushing_ || !connection_) return;
  flushing_ = true;
  std::shared_ptr<Connection> conn = connection_;
  const std::size_t cap = core_->options.max_outbound_bytes;
  bool slow = false;
  while (!out_.empty() && !closed() && !slow) {
    std::deque<Frame> batch;
    batch.swap(out_);
    lock.unlock();
    for (Frame& f : batch) {
      if (conn->queued_bytes() + f.size() > cap) {
        slow = true;
        break;
      }
      conn->send(std::move(f));
    }
    lock.lock();
  }
  flushing_ = false;
  lock.unlock();
  if (slow) close_slow_consumer();
}

void SessionImpl::send(Frame frame) {
  enqueue(std::move(frame));
  flush();
}

bool SessionImpl::wait_for_room(std::size_t bytes) {
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard lock(out_mu_);
    conn = connection_;
  }
  if (!conn) return false;
  const std::size_t soft_cap = core_->options.max_outbound_bytes / 2;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (conn->queued_bytes() + bytes > soft_cap) {
    if (closed() || core_->stopping.load() || Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return !closed();
}

void SessionImpl::end_subscriptions() {
  std::unordered_map<std::string, std::shared_ptr<Subscription>> subs;
  {
    std::lock_guard lock(mu_);
    subs.swap(subs_);
  }
  for (auto& [id, sub] : subs) {
    sub->cancel();
    core_->index.remove(sub);
  }
}

void SessionImpl::close_slow_consumer() {
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard lock(out_mu_);
    if (!mark_closed()) return;
    out_.clear();
    conn = std::move(connection_);
  }
  bump(core_->stats.slow_consumer_disconnects);
  end_subscriptions();
  if (conn) call_host([&] { conn->close("slow consumer: outbound queue over its cap"); });
}

void SessionImpl::on_close() {
  {
    std::lock_guard lock(out_mu_);
    mark_closed();
    out_.clear();
    connection_.reset();
  }
  end_subscriptions();
}

}  // namespace relaycore::pipeline
