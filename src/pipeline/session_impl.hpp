// SessionImpl: relaycore's side of one client connection. It parses frames, routes them to the
// pipeline, answers NIP-42 AUTH and owns the session's subscriptions. Its Outbox keeps the
// outgoing frames in order and its QueryLane queues its REQ and COUNT work.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "pipeline/core.hpp"
#include "pipeline/outbox.hpp"
#include "pipeline/subscription.hpp"
#include "relaycore/connection.hpp"
#include "relaycore/message.hpp"
#include "relaycore/rate_limit.hpp"

namespace relaycore::pipeline {

class SessionImpl final : public Session, public std::enable_shared_from_this<SessionImpl> {
 public:
  SessionImpl(std::shared_ptr<Core> core, std::shared_ptr<Connection> connection,
              ClientInfo client);
  ~SessionImpl() override;

  // Wires the outbox and the query lane to this session (they hold it weakly), counts the
  // connection against its address's cap when `counted` (and closes it, with a NOTICE, when
  // the address is over), and sends the AUTH challenge when the relay asks for it on connect.
  // Call once, right after construction.
  void start(bool counted = true);

  void on_message(std::string_view frame) override;
  bool try_on_message(std::string_view frame) override;
  // Opens (or replaces) subscription `sub_id`, as a REQ that passed the filter policy does.
  void subscribe(const std::string& sub_id, std::vector<Filter> filters);
  void on_drain() override;
  void on_close() override;
  std::string auth_challenge() const override { return challenge_; }

 private:
  // The frame's message; nothing, after answering the client, when it does not parse.
  std::optional<ClientMessage> parse(std::string_view frame, const Limits& limits);
  void handle(EventMessage&& msg);
  // try_on_message() of an EVENT: verified on this thread and queued for the writer, or queued
  // for the verify threads when the host's event policy must run; false, having done nothing,
  // when that queue is full.
  bool try_handle(EventMessage&& msg);
  // The ingest job of an EVENT that the rate limiter lets through; nothing, after answering OK
  // false, when it does not.
  std::optional<IngestJob> ingest_job(EventMessage&& msg);
  void handle(ReqMessage&& msg);
  void handle(CloseMessage&& msg);
  void handle(CountMessage&& msg);
  void handle(AuthMessage&& msg);
  void handle(NegOpenMessage&& msg);
  void handle(NegMsgMessage&& msg);
  void handle(NegCloseMessage&& msg);
  void send(Frame frame) { outbox_->send(std::move(frame)); }
  // Answers OK false to an event, or CLOSED to a subscription, counting the refusal by its
  // prefix in the stats.
  void refuse_event(std::string_view event_id_hex, std::string_view message);
  void refuse_sub(std::string_view sub_id, std::string_view message);
  void send_challenge();
  // The rate limiter's verdict for one EVENT, REQ or COUNT from this client.
  Status allow(Verb verb, const ClientInfo& client) const;
  // The client as it is now (NIP-42 AUTH replaces it).
  std::shared_ptr<const ClientInfo> client() const;
  // Checks a NIP-42 auth event against this session's challenge and the relay URL.
  Status check_auth(const Event& event) const;
  // The host's FilterPolicy verdict (a rejection when it threw).
  PolicyDecision check_filters(const std::vector<Filter>& filters);
  // Runs the host's FilterPolicy; false (after answering CLOSED) when the query is refused.
  bool allow_filters(const std::string& sub_id, const std::vector<Filter>& filters);
  // Queues a job for a reader; the reason when it was refused.
  Status queue(QueryJob job);
  // Queues a REQ's history or a COUNT; false (after answering CLOSED) when it was refused.
  bool submit(const std::string& sub_id, QueryJob job);
  // Queues a negentropy message of an open sync session; answers NEG-ERR when it cannot.
  void submit_neg(const std::shared_ptr<NegSession>& neg, std::string message);
  // The connection is closed (by the host, or by the outbox for a slow reader): end the
  // subscriptions and queued queries, once.
  void end();

  const std::shared_ptr<Core> core_;
  const std::string challenge_;
  const std::shared_ptr<Outbox> outbox_;
  std::shared_ptr<QueryLane> lane_;
  std::atomic<bool> ended_{false};

  mutable std::mutex mu_;  // guards client_, subs_, negs_
  std::shared_ptr<const ClientInfo> client_;
  std::unordered_map<std::string, std::shared_ptr<Subscription>> subs_;
  // NIP-77 sync sessions, by their own sub ids. Closed ones linger until their id is used again.
  std::unordered_map<std::string, std::shared_ptr<NegSession>> negs_;
  ConnectionSlot slot_;
};

}  // namespace relaycore::pipeline
