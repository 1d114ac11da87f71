// Policies: the host's say over what is stored and what may be queried. Both run on relaycore's
// pool threads after the signature check (events) or parse (filters), never under a lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relaycore/connection.hpp"
#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

struct PolicyDecision {
  enum class Verdict : std::uint8_t {
    kAccept,
    kReject,        // OK false / CLOSED with `status`
    kShadowReject,  // answer as if accepted, but store and deliver nothing
    kRequireAuth,   // "auth-required: ..."; the session sends a NIP-42 challenge
  };
  Verdict verdict = Verdict::kAccept;
  // The reason, with its NIP-01 prefix, for kReject and kRequireAuth.
  Status status;

  static PolicyDecision accept() { return {}; }
  static PolicyDecision reject(Status s) { return {Verdict::kReject, std::move(s)}; }
  static PolicyDecision shadow_reject() { return {Verdict::kShadowReject, Status()}; }
  static PolicyDecision require_auth(std::string_view why) {
    return {Verdict::kRequireAuth, Status::auth_required(why)};
  }
};

// [Threading] check() is called from several verify threads at once.
// [Blocking] It runs on the ingest path; blocking slows every ack.
// [Ownership] The event is shared and immutable; the policy may keep the pointer.
// [Errors] A thrown exception is caught and answered as "error: policy failed".
class RELAYCORE_API EventPolicy {
 public:
  virtual ~EventPolicy() = default;
  virtual PolicyDecision check(const EventPtr& event, const ClientInfo& client) = 0;
};

// [Threading] check() is called from several threads at once.
// [Blocking] It runs before a REQ or COUNT is served.
// [Ownership] Borrowed for the call.
// [Errors] A thrown exception is caught and answered as "error: policy failed".
class RELAYCORE_API FilterPolicy {
 public:
  virtual ~FilterPolicy() = default;
  virtual PolicyDecision check(const std::vector<Filter>& filters, const ClientInfo& client) = 0;
};

}  // namespace relaycore
