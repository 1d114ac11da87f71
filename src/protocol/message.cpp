#include "relaycore/message.hpp"

#include <fmt/format.h>

#include "protocol/frame_scan.hpp"
#include "protocol/json_dom.hpp"
#include "protocol/json_writer.hpp"
#include "relaycore/hex.hpp"

namespace relaycore {
namespace {

// A message of the shape [VERB, sub_id, text]; `head` is `["VERB",`.
std::string verb_sub_text_message(std::string_view head, std::string_view sub_id,
                                  std::string_view text) {
  std::string out(head);
  json::append_string(out, sub_id);
  out.push_back(',');
  json::append_string(out, text);
  out.push_back(']');
  return out;
}

using Error = MessageError;

Error fail(Verb verb, Status status) {
  Error e;
  e.status = std::move(status);
  e.verb = verb;
  return e;
}

// NIP-01: a non-empty string of at most 64 characters (counted as code points).
Status read_sub_id(const json::element& v, const Limits& limits, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return Status::invalid(std::string("subscription id must be a string, not ") +
                           json::type_name(v));
  }
  if (s.empty()) return Status::invalid("subscription id must not be empty");
  std::size_t chars = 0;
  for (char c : s) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  if (chars > limits.max_subid_length) {
    return Status::invalid(
        fmt::format("subscription id is too long (max {} characters)", limits.max_subid_length));
  }
  out.assign(s);
  return Status::ok();
}

// A refused frame, answered as far as a tolerant scan of it can tell: OK false when it is an
// EVENT or AUTH whose event id is readable, so the client waiting on that id is not left waiting.
// NIP-01 leaves only a NOTICE for a frame with no id to answer.
Error refused(json::ScannedFrame scanned, Status status) {
  Error e = fail(scanned.verb, std::move(status));
  e.event_id = std::move(scanned.event_id);
  return e;
}

Error refused(std::string_view frame, Status status) {
  return refused(json::scan_event_frame(frame), std::move(status));
}

// Refused unread. An event is named as such, so its author knows which limit it hit.
Error too_large(std::string_view frame, const Limits& limits) {
  json::ScannedFrame scanned = json::scan_event_frame(frame);
  const bool event = scanned.verb == Verb::kEvent || scanned.verb == Verb::kAuth;
  std::string message = event ? "event is too large (message of " : "message is too large (";
  message += std::to_string(frame.size()) + " bytes, max " +
             std::to_string(limits.max_message_bytes) + ")";
  return refused(std::move(scanned), Status::invalid(message));
}

Result<EventPtr, Error> read_event(Verb verb, std::string_view frame, const json::array& msg,
                                   const Limits& limits) {
  std::string_view name = verb == Verb::kEvent ? "EVENT" : "AUTH";
  if (msg.size() != 2) {
    return refused(frame, Status::invalid(std::string(name) + " takes exactly one event"));
  }
  json::element ev = msg.at(1).value_unsafe();
  Result<EventFields> fields = json::event_fields(ev, limits);
  Result<EventPtr> event =
      fields ? Event::create(std::move(fields).value(), limits) : Result<EventPtr>(fields.error());
  if (!event) return refused(frame, std::move(event).error());
  return std::move(event).value();
}

Result<std::vector<Filter>, Error> read_filters(Verb verb, const json::array& msg,
                                                const Limits& limits, std::string& sub_id) {
  std::string_view name = verb == Verb::kReq ? "REQ" : "COUNT";
  if (msg.size() < 2) {
    return fail(verb, Status::invalid(std::string(name) + " needs a subscription id"));
  }
  if (Status s = read_sub_id(msg.at(1).value_unsafe(), limits, sub_id); !s) {
    return fail(verb, std::move(s));
  }
  auto with_sub = [&](Status s) {
    Error e = fail(verb, std::move(s));
    e.sub_id = sub_id;
    return e;
  };
  if (msg.size() < 3) return with_sub(Status::invalid(std::string(name) + " needs a filter"));
  if (msg.size() - 2 > limits.max_filters) {
    return with_sub(Status::invalid(
        fmt::format("too many filters ({}, max {})", msg.size() - 2, limits.max_filters)));
  }
  std::vector<Filter> filters;
  filters.reserve(msg.size() - 2);
  std::size_t i = 0;
  for (json::element item : msg) {
    if (i++ < 2) continue;
    Result<Filter> f = json::filter(item, limits);
    if (!f) return with_sub(std::move(f).error());
    filters.push_back(std::move(f).value());
  }
  return filters;
}

// A negentropy message: lowercase hex of at least the version byte.
Status read_neg_hex(const json::element& v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return Status::invalid(std::string("negentropy message must be a hex string, not ") +
                           json::type_name(v));
  }
  if (s.empty() || s.size() % 2 != 0) {
    return Status::invalid("negentropy message must be a non-empty hex string of whole bytes");
  }
  out.resize(s.size() / 2);
  if (!hex_decode(s, reinterpret_cast<std::uint8_t*>(out.data()), out.size())) {
    return Status::invalid("negentropy message is not lowercase hex");
  }
  return Status::ok();
}

// NEG-OPEN, NEG-MSG and NEG-CLOSE (NIP-77): the sub id first, so that a later failure can be
// answered with NEG-ERR for it.
Result<ClientMessage, Error> read_neg(Verb verb, const json::array& msg, const Limits& limits) {
  const char* name = verb == Verb::kNegOpen  ? "NEG-OPEN"
                     : verb == Verb::kNegMsg ? "NEG-MSG"
                                             : "NEG-CLOSE";
  const std::size_t want = verb == Verb::kNegOpen ? 4 : verb == Verb::kNegMsg ? 3 : 2;
  if (msg.size() < 2)
    return fail(verb, Status::invalid(std::string(name) + " needs a subscription id"));
  std::string sub_id;
  if (Status s = read_sub_id(msg.at(1).value_unsafe(), limits, sub_id); !s) {
    return fail(verb, std::move(s));
  }
  auto with_sub = [&](Status s) {
    Error e = fail(verb, std::move(s));
    e.sub_id = sub_id;
    return e;
  };
  if (msg.size() != want) {
    return with_sub(
        Status::invalid(fmt::format("{} takes {} elements, not {}", name, want, msg.size())));
  }
  if (verb == Verb::kNegClose) return ClientMessage(NegCloseMessage{std::move(sub_id)});
  std::string message;
  if (Status s = read_neg_hex(msg.at(want - 1).value_unsafe(), message); !s) {
    return with_sub(std::move(s));
  }
  if (verb == Verb::kNegMsg)
    return ClientMessage(NegMsgMessage{std::move(sub_id), std::move(message)});
  Result<Filter> filter = json::filter(msg.at(2).value_unsafe(), limits);
  if (!filter) return with_sub(std::move(filter).error());
  return ClientMessage(
      NegOpenMessage{std::move(sub_id), std::move(filter).value(), std::move(message)});
}

}  // namespace

Result<ClientMessage, MessageError> parse_client_message(std::string_view frame,
                                                         const Limits& limits) {
  if (frame.size() > limits.max_message_bytes) return too_large(frame, limits);
  json::element root;
  if (Status s = json::parse(frame, limits, root); !s) return refused(frame, std::move(s));
  json::array msg;
  if (root.get_array().get(msg) != simdjson::SUCCESS) {
    return fail(Verb::kUnknown, Status::invalid(std::string("message must be a JSON array, not ") +
                                                json::type_name(root)));
  }
  if (msg.size() == 0) return fail(Verb::kUnknown, Status::invalid("message is an empty array"));
  std::string_view verb;
  if (msg.at(0).get_string().get(verb) != simdjson::SUCCESS) {
    return fail(Verb::kUnknown, Status::invalid(std::string("message type must be a string, not ") +
                                                json::type_name(msg.at(0).value_unsafe())));
  }

  if (verb == "EVENT" || verb == "AUTH") {
    Verb v = verb == "EVENT" ? Verb::kEvent : Verb::kAuth;
    Result<EventPtr, Error> event = read_event(v, frame, msg, limits);
    if (!event) return std::move(event).error();
    if (v == Verb::kEvent) return ClientMessage(EventMessage{std::move(event).value()});
    return ClientMessage(AuthMessage{std::move(event).value()});
  }
  if (verb == "REQ" || verb == "COUNT") {
    Verb v = verb == "REQ" ? Verb::kReq : Verb::kCount;
    std::string sub_id;
    Result<std::vector<Filter>, Error> filters = read_filters(v, msg, limits, sub_id);
    if (!filters) return std::move(filters).error();
    if (v == Verb::kReq) return ClientMessage(ReqMessage{sub_id, std::move(filters).value()});
    return ClientMessage(CountMessage{sub_id, std::move(filters).value()});
  }
  if (verb == "CLOSE") {
    CloseMessage close;
    if (msg.size() != 2) {
      return fail(Verb::kClose, Status::invalid("CLOSE takes exactly one subscription id"));
    }
    if (Status s = read_sub_id(msg.at(1).value_unsafe(), limits, close.sub_id); !s) {
      return fail(Verb::kClose, std::move(s));
    }
    return ClientMessage(std::move(close));
  }
  if (verb == "NEG-OPEN") return read_neg(Verb::kNegOpen, msg, limits);
  if (verb == "NEG-MSG") return read_neg(Verb::kNegMsg, msg, limits);
  if (verb == "NEG-CLOSE") return read_neg(Verb::kNegClose, msg, limits);
  return fail(Verb::kUnknown,
              Status::invalid("unknown message type \"" + json::shown(verb, 32) + "\""));
}

std::string error_reply(const MessageError& error) {
  if ((error.verb == Verb::kEvent || error.verb == Verb::kAuth) && !error.event_id.empty()) {
    return ok_message(error.event_id, false, error.status.message());
  }
  if ((error.verb == Verb::kReq || error.verb == Verb::kCount) && !error.sub_id.empty()) {
    return closed_message(error.sub_id, error.status.message());
  }
  if ((error.verb == Verb::kNegOpen || error.verb == Verb::kNegMsg) && !error.sub_id.empty()) {
    return neg_err_message(error.sub_id, error.status.message());
  }
  return notice_message(error.status.message());
}

std::string ok_message(std::string_view event_id_hex, bool accepted, std::string_view message) {
  std::string out;
  out.reserve(16 + event_id_hex.size() + message.size() + 16);
  out.append("[\"OK\",");
  json::append_string(out, event_id_hex);
  out.append(accepted ? ",true," : ",false,");
  json::append_string(out, message);
  out.push_back(']');
  return out;
}

std::string event_message(std::string_view sub_id, const Event& event) {
  std::string out;
  out.reserve(16 + sub_id.size() + event.json().size());
  out.append("[\"EVENT\",");
  json::append_string(out, sub_id);
  out.push_back(',');
  out.append(event.json());
  out.push_back(']');
  return out;
}

std::string eose_message(std::string_view sub_id) {
  std::string out = "[\"EOSE\",";
  json::append_string(out, sub_id);
  out.push_back(']');
  return out;
}

std::string closed_message(std::string_view sub_id, std::string_view message) {
  return verb_sub_text_message("[\"CLOSED\",", sub_id, message);
}

std::string notice_message(std::string_view message) {
  std::string out = "[\"NOTICE\",";
  json::append_string(out, message);
  out.push_back(']');
  return out;
}

std::string count_message(std::string_view sub_id, std::uint64_t count) {
  std::string out = "[\"COUNT\",";
  json::append_string(out, sub_id);
  out.append(",{\"count\":");
  json::append_uint(out, count);
  out.append("}]");
  return out;
}

std::string auth_challenge_message(std::string_view challenge) {
  std::string out = "[\"AUTH\",";
  json::append_string(out, challenge);
  out.push_back(']');
  return out;
}

std::string neg_msg_message(std::string_view sub_id, std::string_view message) {
  std::string out = "[\"NEG-MSG\",";
  json::append_string(out, sub_id);
  out.push_back(',');
  json::append_hex_string(out, reinterpret_cast<const std::uint8_t*>(message.data()),
                          message.size());
  out.push_back(']');
  return out;
}

std::string neg_err_message(std::string_view sub_id, std::string_view reason) {
  return verb_sub_text_message("[\"NEG-ERR\",", sub_id, reason);
}

}  // namespace relaycore
