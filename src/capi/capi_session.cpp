// The C API's live subscriptions and host sessions: C callbacks behind relaycore's
// SubscribeCallbacks and Connection.
#include "capi/capi.hpp"

namespace relaycore::capi {

// A host's connection, as three C callbacks. detach() waits for a callback in progress and
// stops any from starting, so the host may free `user` once its session is closed.
class HostConnection final : public Connection {
 public:
  HostConnection(relaycore_send_fn send_fn, relaycore_closed_fn close_fn,
                 relaycore_queued_bytes_fn queued_bytes_fn, void* user)
      : send_(send_fn), close_(close_fn), queued_bytes_(queued_bytes_fn), user_(user) {}

  void send(Frame frame) override {
    std::lock_guard lock(calls_mu_);
    if (detached_ || send_ == nullptr) return;
    ConnectionCallbackScope scope;
    if (frame.event() == nullptr) {
      std::string_view text = frame.parts()[0];
      send_(user_, text.data(), text.size());
      return;
    }
    const std::string text = frame.to_string();
    send_(user_, text.data(), text.size());
  }

  void close(std::string_view reason) override {
    std::lock_guard lock(calls_mu_);
    if (detached_ || close_ == nullptr) return;
    ConnectionCallbackScope scope;
    const std::string text(reason);
    close_(user_, text.c_str());
  }

  // Called from any thread, also while send() runs, so it has its own lock.
  std::size_t queued_bytes() const override {
    std::lock_guard lock(queued_mu_);
    if (queued_detached_ || queued_bytes_ == nullptr) return 0;
    ConnectionCallbackScope scope;
    return queued_bytes_(user_);
  }

  void detach() {
    {
      std::lock_guard lock(calls_mu_);
      detached_ = true;
    }
    std::lock_guard lock(queued_mu_);
    queued_detached_ = true;
  }

 private:
  const relaycore_send_fn send_;
  const relaycore_closed_fn close_;
  const relaycore_queued_bytes_fn queued_bytes_;
  void* const user_;

  std::mutex calls_mu_;  // guards detached_; held during send and close callbacks
  bool detached_ = false;
  mutable std::mutex queued_mu_;  // guards queued_detached_; held during queued_bytes callbacks
  bool queued_detached_ = false;
};

namespace {

// Copies an event's JSON into a NUL-terminated string for a C callback.
void call_with_json(relaycore_event_fn fn, void* user, const EventPtr& event) {
  const std::string json(event->json());
  fn(user, json.c_str());
}

}  // namespace
}  // namespace relaycore::capi

struct relaycore_subscription {
  std::shared_ptr<relaycore::capi::RelayState> relay;
  std::mutex mu;  // guards handle
  std::unique_ptr<relaycore::SubscriptionHandle> handle;
};

struct relaycore_session {
  std::shared_ptr<relaycore::capi::RelayState> relay;
  std::shared_ptr<relaycore::capi::HostConnection> connection;
  std::shared_ptr<relaycore::Session> session;
  std::atomic<bool> closed{false};
};

using namespace relaycore;
using namespace relaycore::capi;

namespace {

// The checks a call on a session makes before it feeds the session.
relaycore_status open_session_state(relaycore_session* session) {
  if (relaycore_status s = check_handle(session, "session"); s != RELAYCORE_OK) return s;
  if (session->closed.load()) return fail(RELAYCORE_CLOSED, "error: session is closed");
  return check_open(*session->relay);
}

}  // namespace

extern "C" {

relaycore_status relaycore_subscribe(relaycore_relay* relay, const char* filters_json,
                                     relaycore_event_fn on_event, relaycore_eose_fn on_eose,
                                     relaycore_closed_fn on_closed, void* user,
                                     relaycore_subscription** subscription_out) {
  zero(subscription_out);
  return run([&] {
    if (subscription_out == nullptr) {
      return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: subscription_out is NULL");
    }
    if (relaycore_status s = check_handle(relay, "relay"); s != RELAYCORE_OK) return s;
    std::shared_ptr<RelayState> state = relay->state;
    if (relaycore_status s = check_open(*state); s != RELAYCORE_OK) return s;
    std::vector<Filter> filters;
    if (relaycore_status s = parse_filters_arg(filters_json, state->limits, filters);
        s != RELAYCORE_OK) {
      return s;
    }
    SubscribeCallbacks callbacks;
    if (on_event != nullptr) {
      callbacks.on_event = [on_event, user](const EventPtr& e) {
        call_with_json(on_event, user, e);
      };
    }
    if (on_eose != nullptr) callbacks.on_eose = [on_eose, user] { on_eose(user); };
    if (on_closed != nullptr) {
      callbacks.on_closed = [on_closed, user](std::string_view reason) {
        const std::string text(reason);
        on_closed(user, text.c_str());
      };
    }
    auto sub = std::make_unique<relaycore_subscription>();
    sub->relay = state;
    Result<std::unique_ptr<SubscriptionHandle>> handle =
        state->relay->subscribe(std::move(filters), std::move(callbacks));
    if (!handle) return fail(RELAYCORE_CLOSED, handle.error().message());
    sub->handle = std::move(handle).value();
    *subscription_out = sub.release();
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_unsubscribe(relaycore_subscription* subscription) {
  return run([&] {
    if (relaycore_status s = check_handle(subscription, "subscription"); s != RELAYCORE_OK) {
      return s;
    }
    std::unique_ptr<SubscriptionHandle> handle;
    {
      std::lock_guard lock(subscription->mu);
      handle.swap(subscription->handle);
    }
    if (!handle) return fail(RELAYCORE_CLOSED, "error: subscription is already closed");
    handle->close();
    handle.reset();
    return check_open(*subscription->relay);
  });
}

void relaycore_subscription_free(relaycore_subscription* subscription) {
  if (subscription == nullptr) return;
  free_handle([subscription] {
    (void)relaycore_unsubscribe(subscription);
    delete subscription;
  });
}

relaycore_status relaycore_session_open(relaycore_relay* relay, relaycore_send_fn send,
                                        relaycore_closed_fn close,
                                        relaycore_queued_bytes_fn queued_bytes, void* user,
                                        const char* remote_address,
                                        relaycore_session** session_out) {
  zero(session_out);
  return run([&] {
    if (session_out == nullptr) {
      return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: session_out is NULL");
    }
    if (relaycore_status s = check_handle(relay, "relay"); s != RELAYCORE_OK) return s;
    std::shared_ptr<RelayState> state = relay->state;
    if (relaycore_status s = check_open(*state); s != RELAYCORE_OK) return s;
    if (send == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: send is NULL");
    auto session = std::make_unique<relaycore_session>();
    session->relay = state;
    session->connection = std::make_shared<HostConnection>(send, close, queued_bytes, user);
    ClientInfo client;
    if (remote_address != nullptr) client.remote_address = remote_address;
    session->session = state->relay->open_session(session->connection, std::move(client));
    *session_out = session.release();
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_session_message(relaycore_session* session, const char* frame,
                                           size_t len) {
  return run([&] {
    if (relaycore_status s = open_session_state(session); s != RELAYCORE_OK) return s;
    if (frame == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: frame is NULL");
    session->session->on_message(std::string_view(frame, len));
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_session_try_message(relaycore_session* session, const char* frame,
                                               size_t len, int* handled_out) {
  return run([&] {
    if (handled_out == nullptr) {
      return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: handled_out is NULL");
    }
    *handled_out = 0;
    if (relaycore_status s = open_session_state(session); s != RELAYCORE_OK) return s;
    if (frame == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: frame is NULL");
    *handled_out = session->session->try_on_message(std::string_view(frame, len)) ? 1 : 0;
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_session_drain(relaycore_session* session) {
  return run([&] {
    if (relaycore_status s = open_session_state(session); s != RELAYCORE_OK) return s;
    session->session->on_drain();
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_session_close(relaycore_session* session) {
  return run([&] {
    if (relaycore_status s = check_handle(session, "session"); s != RELAYCORE_OK) return s;
    if (session->closed.exchange(true)) {
      return fail(RELAYCORE_CLOSED, "error: session is already closed");
    }
    session->connection->detach();
    session->session->on_close();
    return check_open(*session->relay);
  });
}

void relaycore_session_free(relaycore_session* session) {
  if (session == nullptr) return;
  free_handle([session] {
    (void)relaycore_session_close(session);
    delete session;
  });
}

}  // extern "C"
