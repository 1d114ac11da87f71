// The client's side of NIP-01: the frames a client sends, and the relay's frames read back.
// Shares the JSON reader and writer with the relay's side (message.cpp).
#include <fmt/format.h>

#include "protocol/json_dom.hpp"
#include "protocol/json_writer.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/message.hpp"

namespace relaycore {
namespace {

// `["<verb>",` followed by the quoted `sub_id`.
std::string open_frame(std::string_view verb, std::string_view sub_id) {
  std::string out = "[\"";
  out.append(verb);
  out.append("\",");
  json::append_string(out, sub_id);
  return out;
}

// `["<verb>","<sub id>",<filter>,...]`
std::string filters_frame(std::string_view verb, std::string_view sub_id,
                          const std::vector<Filter>& filters) {
  std::string out = open_frame(verb, sub_id);
  for (const Filter& f : filters) {
    out.push_back(',');
    out.append(f.to_json());
  }
  out.push_back(']');
  return out;
}

// The string at `index` of `msg`, named `what` in the error.
Status read_string(const json::array& msg, std::size_t index, std::string_view what,
                   std::string& out) {
  std::string_view s;
  if (msg.at(index).get_string().get(s) != simdjson::SUCCESS) {
    return Status::invalid(fmt::format("{} must be a string, not {}", what,
                                       json::type_name(msg.at(index).value_unsafe())));
  }
  out.assign(s);
  return Status::ok();
}

Status want_size(const json::array& msg, std::string_view verb, std::size_t n) {
  if (msg.size() == n) return Status::ok();
  return Status::invalid(fmt::format("{} takes {} elements, not {}", verb, n, msg.size()));
}

}  // namespace

std::string client_event_message(const Event& event) {
  std::string out;
  out.reserve(12 + event.json().size());
  out.append("[\"EVENT\",");
  out.append(event.json());
  out.push_back(']');
  return out;
}

std::string req_message(std::string_view sub_id, const std::vector<Filter>& filters) {
  return filters_frame("REQ", sub_id, filters);
}

std::string count_request_message(std::string_view sub_id, const std::vector<Filter>& filters) {
  return filters_frame("COUNT", sub_id, filters);
}

std::string close_message(std::string_view sub_id) { return open_frame("CLOSE", sub_id) + "]"; }

std::string neg_open_message(std::string_view sub_id, const Filter& filter,
                             std::string_view message) {
  std::string out = open_frame("NEG-OPEN", sub_id);
  out.push_back(',');
  out.append(filter.to_json());
  out.push_back(',');
  json::append_hex_string(out, reinterpret_cast<const std::uint8_t*>(message.data()),
                          message.size());
  out.push_back(']');
  return out;
}

std::string neg_close_message(std::string_view sub_id) {
  return open_frame("NEG-CLOSE", sub_id) + "]";
}

Result<RelayMessage> parse_relay_message(std::string_view frame, const Limits& limits) {
  json::element root;
  if (Status s = json::parse(frame, limits, root); !s) return s;
  json::array msg;
  if (root.get_array().get(msg) != simdjson::SUCCESS || msg.size() == 0) {
    return Status::invalid("relay message must be a non-empty JSON array");
  }
  std::string verb;
  if (Status s = read_string(msg, 0, "message type", verb); !s) return s;

  if (verb == "EVENT") {
    if (Status s = want_size(msg, verb, 3); !s) return s;
    SubEventMessage m;
    if (Status s = read_string(msg, 1, "subscription id", m.sub_id); !s) return s;
    Result<EventFields> fields = json::event_fields(msg.at(2).value_unsafe(), limits);
    if (!fields) return fields.error();
    Result<EventPtr> event = Event::create(std::move(fields).value(), limits);
    if (!event) return event.error();
    m.event = std::move(event).value();
    return RelayMessage(std::move(m));
  }
  if (verb == "OK") {
    if (Status s = want_size(msg, verb, 4); !s) return s;
    OkMessage m;
    if (Status s = read_string(msg, 1, "event id", m.event_id); !s) return s;
    if (msg.at(2).get_bool().get(m.accepted) != simdjson::SUCCESS) {
      return Status::invalid("OK's third element must be true or false");
    }
    if (Status s = read_string(msg, 3, "OK message", m.message); !s) return s;
    return RelayMessage(std::move(m));
  }
  if (verb == "EOSE") {
    if (Status s = want_size(msg, verb, 2); !s) return s;
    EoseMessage m;
    if (Status s = read_string(msg, 1, "subscription id", m.sub_id); !s) return s;
    return RelayMessage(std::move(m));
  }
  if (verb == "CLOSED" || verb == "NEG-ERR") {
    if (Status s = want_size(msg, verb, 3); !s) return s;
    std::string sub_id, text;
    if (Status s = read_string(msg, 1, "subscription id", sub_id); !s) return s;
    if (Status s = read_string(msg, 2, verb + " message", text); !s) return s;
    if (verb == "CLOSED") return RelayMessage(ClosedMessage{std::move(sub_id), std::move(text)});
    return RelayMessage(NegErrMessage{std::move(sub_id), std::move(text)});
  }
  if (verb == "COUNT") {
    if (Status s = want_size(msg, verb, 3); !s) return s;
    CountResultMessage m;
    if (Status s = read_string(msg, 1, "subscription id", m.sub_id); !s) return s;
    if (msg.at(2)["count"].get_uint64().get(m.count) != simdjson::SUCCESS) {
      return Status::invalid("COUNT's result must be an object with a non-negative \"count\"");
    }
    return RelayMessage(std::move(m));
  }
  if (verb == "NEG-MSG") {
    if (Status s = want_size(msg, verb, 3); !s) return s;
    NegMsgMessage m;
    std::string hex;
    if (Status s = read_string(msg, 1, "subscription id", m.sub_id); !s) return s;
    if (Status s = read_string(msg, 2, "negentropy message", hex); !s) return s;
    m.message.resize(hex.size() / 2);
    if (hex.empty() || hex.size() % 2 != 0 ||
        !hex_decode(hex, reinterpret_cast<std::uint8_t*>(m.message.data()), m.message.size())) {
      return Status::invalid("negentropy message is not a non-empty lowercase hex string");
    }
    return RelayMessage(std::move(m));
  }
  if (verb == "NOTICE" || verb == "AUTH") {
    if (Status s = want_size(msg, verb, 2); !s) return s;
    std::string text;
    if (Status s = read_string(msg, 1, verb + " text", text); !s) return s;
    if (verb == "NOTICE") return RelayMessage(NoticeMessage{std::move(text)});
    return RelayMessage(AuthChallengeMessage{std::move(text)});
  }
  return Status::invalid("unknown relay message type \"" + json::shown(verb, 32) + "\"");
}

}  // namespace relaycore
