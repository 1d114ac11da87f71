// Messages: the NIP-01 client messages parsed into typed structs, and builders for every relay
// message. Frames are JSON arrays whose first element is the verb.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

// ["EVENT", <event>]
struct EventMessage {
  EventPtr event;
};
// ["REQ", <sub id>, <filter>, ...]
struct ReqMessage {
  std::string sub_id;
  std::vector<Filter> filters;
};
// ["CLOSE", <sub id>]
struct CloseMessage {
  std::string sub_id;
};
// ["COUNT", <sub id>, <filter>, ...] (NIP-45)
struct CountMessage {
  std::string sub_id;
  std::vector<Filter> filters;
};
// ["AUTH", <signed kind 22242 event>] (NIP-42)
struct AuthMessage {
  EventPtr event;
};

// ["NEG-OPEN", <sub id>, <filter>, <initial message, hex>] (NIP-77). `message` is decoded.
// Negentropy subscription ids are a namespace of their own, apart from REQ's.
struct NegOpenMessage {
  std::string sub_id;
  Filter filter;
  std::string message;
};
// ["NEG-MSG", <sub id>, <message, hex>] (NIP-77). `message` is decoded.
struct NegMsgMessage {
  std::string sub_id;
  std::string message;
};
// ["NEG-CLOSE", <sub id>] (NIP-77)
struct NegCloseMessage {
  std::string sub_id;
};

using ClientMessage = std::variant<EventMessage, ReqMessage, CloseMessage, CountMessage,
                                   AuthMessage, NegOpenMessage, NegMsgMessage, NegCloseMessage>;

enum class Verb : std::uint8_t {
  kUnknown,
  kEvent,
  kReq,
  kClose,
  kCount,
  kAuth,
  kNegOpen,
  kNegMsg,
  kNegClose
};

// Why a frame was rejected, with what could be read of it, so the answer can take the form
// NIP-01 asks for: OK false for an EVENT whose id was readable, CLOSED for a REQ or COUNT whose
// sub id was readable, NEG-ERR for a NEG-OPEN or NEG-MSG whose sub id was readable, NOTICE
// otherwise. The event id is looked for even when the rest of the
// frame cannot be parsed (too large, too deep, a bad number or escape, cut short), but only as
// the "id" member of the event object itself, never inside its content or tags.
struct MessageError {
  Status status;
  Verb verb = Verb::kUnknown;
  std::string sub_id;    // set for REQ, COUNT, CLOSE and NEG-* when readable
  std::string event_id;  // 64 hex; set for EVENT and AUTH when readable
};

// Parses one client frame. Events are parsed but not verified.
RELAYCORE_API Result<ClientMessage, MessageError> parse_client_message(
    std::string_view frame, const Limits& limits = Limits());

// The frame that answers a rejected client frame: OK, CLOSED, NEG-ERR or NOTICE (see
// MessageError).
RELAYCORE_API std::string error_reply(const MessageError& error);

// Relay-to-client builders. Strings are escaped as NIP-01 asks.
RELAYCORE_API std::string ok_message(std::string_view event_id_hex, bool accepted,
                                     std::string_view message);
RELAYCORE_API std::string event_message(std::string_view sub_id, const Event& event);
RELAYCORE_API std::string eose_message(std::string_view sub_id);
RELAYCORE_API std::string closed_message(std::string_view sub_id, std::string_view message);
RELAYCORE_API std::string notice_message(std::string_view message);
RELAYCORE_API std::string count_message(std::string_view sub_id, std::uint64_t count);
RELAYCORE_API std::string auth_challenge_message(std::string_view challenge);
// ["NEG-MSG", <sub id>, <message, hex>]: `message` is the binary negentropy message.
RELAYCORE_API std::string neg_msg_message(std::string_view sub_id, std::string_view message);
// ["NEG-ERR", <sub id>, <reason>]; the reason starts with a NIP-01 prefix.
RELAYCORE_API std::string neg_err_message(std::string_view sub_id, std::string_view reason);

// Client-to-relay builders, for hosts and tools that talk to a relay as a client. NEG-MSG is
// the same frame both ways: neg_msg_message() above.
// ["EVENT", <event>]
RELAYCORE_API std::string client_event_message(const Event& event);
// ["REQ", <sub id>, <filter>, ...]
RELAYCORE_API std::string req_message(std::string_view sub_id, const std::vector<Filter>& filters);
// ["COUNT", <sub id>, <filter>, ...] (NIP-45)
RELAYCORE_API std::string count_request_message(std::string_view sub_id,
                                                const std::vector<Filter>& filters);
// ["CLOSE", <sub id>]
RELAYCORE_API std::string close_message(std::string_view sub_id);
// ["NEG-OPEN", <sub id>, <filter>, <message, hex>]: `message` is the binary negentropy message.
RELAYCORE_API std::string neg_open_message(std::string_view sub_id, const Filter& filter,
                                           std::string_view message);
// ["NEG-CLOSE", <sub id>]
RELAYCORE_API std::string neg_close_message(std::string_view sub_id);

// Relay-to-client messages, as a client reads them.
// ["EVENT", <sub id>, <event>]: the event is parsed, not verified.
struct SubEventMessage {
  std::string sub_id;
  EventPtr event;
};
// ["OK", <event id, hex>, <accepted>, <message>]
struct OkMessage {
  std::string event_id;
  bool accepted = false;
  std::string message;
};
// ["EOSE", <sub id>]
struct EoseMessage {
  std::string sub_id;
};
// ["CLOSED", <sub id>, <message>]
struct ClosedMessage {
  std::string sub_id;
  std::string message;
};
// ["NOTICE", <message>]
struct NoticeMessage {
  std::string message;
};
// ["COUNT", <sub id>, {"count": <n>, ...}] (NIP-45)
struct CountResultMessage {
  std::string sub_id;
  std::uint64_t count = 0;
};
// ["NEG-ERR", <sub id>, <reason>] (NIP-77). NEG-MSG is read into NegMsgMessage.
struct NegErrMessage {
  std::string sub_id;
  std::string reason;
};
// ["AUTH", <challenge>] (NIP-42)
struct AuthChallengeMessage {
  std::string challenge;
};

using RelayMessage =
    std::variant<SubEventMessage, OkMessage, EoseMessage, ClosedMessage, NoticeMessage,
                 CountResultMessage, NegMsgMessage, NegErrMessage, AuthChallengeMessage>;

// Parses one relay frame. Events are parsed but not verified: a client checks them with
// Event::verify() before it trusts them. Unknown verbs and bad shapes are "invalid: ...".
RELAYCORE_API Result<RelayMessage> parse_relay_message(std::string_view frame,
                                                       const Limits& limits = Limits());

// Appends `s` as a JSON string with the NIP-01 escapes (quotes included).
RELAYCORE_API void append_json_string(std::string& out, std::string_view s);

}  // namespace relaycore
