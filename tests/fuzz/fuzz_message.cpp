// libFuzzer target for the client message parser. Each input is one client frame, parsed with
// the default Limits and with tiny ones (so every limit is reachable in a short input), and also
// handed to parse_event and parse_filter directly. A rejected input must still produce a
// well-formed NIP-01 answer; an accepted one must survive the round trips the relay depends on:
// canonical event JSON re-parses byte-identically, and Filter::to_json() re-parses to a filter
// that serialises and matches the same. A broken invariant aborts, which libFuzzer reports.
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/message.hpp"
#include "relaycore/negentropy.hpp"
#include "relaycore/status.hpp"

using namespace relaycore;

namespace {

// Aborts with the reason on stderr; libFuzzer then saves the input as a crash file.
void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_message: invariant violated: %s\n", what);
  std::abort();
}

// Limits small enough that a fuzzer finds every boundary within a few hundred bytes.
Limits tiny_limits() {
  Limits l;
  l.max_message_bytes = 1024;
  l.max_event_bytes = 768;
  l.max_event_tags = 4;
  l.max_tag_strings = 3;
  l.max_tag_value_bytes = 80;
  l.max_content_bytes = 64;
  l.max_json_depth = 4;
  l.max_subid_length = 8;
  l.max_filters = 2;
  l.max_filter_values = 3;
  l.max_filter_tags = 2;
  l.max_search_bytes = 8;
  l.max_limit = 10;
  return l;
}

// Events that parsed filters are matched against. Built from fields, not signed: matching does
// not look at signatures.
const std::vector<EventPtr>& sample_events() {
  static const std::vector<EventPtr> events = [] {
    std::vector<EventPtr> out;
    auto add = [&out](std::uint8_t seed, std::uint16_t kind, std::int64_t created_at,
                      std::vector<Tag> tags) {
      EventFields f;
      f.id.fill(seed);
      f.pubkey.fill(static_cast<std::uint8_t>(seed + 1));
      f.sig.fill(static_cast<std::uint8_t>(seed + 2));
      f.kind = kind;
      f.created_at = created_at;
      f.tags = std::move(tags);
      f.content = "sample";
      out.push_back(Event::create(std::move(f)).value());
    };
    add(0x00, 1, 0, {});
    add(0x11, 1, 1700000000, {{"e", std::string(64, '1')}, {"t", "nostr"}, {"p", "x"}});
    add(0xaa, 30023, 1800000000, {{"d", "post"}, {"T", "up"}, {"t", ""}});
    add(0xff, 65535, INT64_MAX, {{"a", "b", "c"}, {"expiration", "1"}});
    return out;
  }();
  return events;
}

// A readable event id: 64 hex digits. Upper case counts, so a client that sent one still gets
// the OK false it waits for, echoing the id as sent.
bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

// NIP-01 counts a subscription id in characters, so limits do too.
std::size_t utf8_chars(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

simdjson::dom::parser& reply_parser() {
  static simdjson::dom::parser parser;
  return parser;
}

// Parses a relay-to-client frame and returns its elements; aborts unless it is a JSON array.
simdjson::dom::array parse_reply(const std::string& reply, const char* what) {
  simdjson::dom::array arr;
  require(reply_parser().parse(reply).get_array().get(arr) == simdjson::SUCCESS, what);
  return arr;
}

std::string_view string_at(const simdjson::dom::array& arr, std::size_t i, const char* what) {
  std::string_view s;
  require(arr.at(i).get_string().get(s) == simdjson::SUCCESS, what);
  return s;
}

// Every rejection carries a NIP-01 prefix, and error_reply() answers it with valid JSON of the
// shape NIP-01 asks for.
void check_status(const Status& s) {
  require(!s.is_ok(), "a rejection carries an ok status");
  require(s.code() == StatusCode::kInvalid || s.code() == StatusCode::kError,
          "parser rejections are invalid: (or error: for out of memory)");
  const std::string& msg = s.message();
  const std::string_view prefix = status_prefix(s.code());
  require(msg.size() > prefix.size() + 2 && msg.compare(0, prefix.size(), prefix) == 0 &&
              msg[prefix.size()] == ':' && msg[prefix.size() + 1] == ' ',
          "status message does not start with its prefix");
}

// The id a rejected frame must be answered for, when the frame is valid JSON (to a parser with
// no limits of relaycore's): the first "id" member of the event object in ["EVENT",{...}] or
// ["AUTH",{...}], if it is 64 hex digits; otherwise none. Nothing for a frame that is not JSON.
std::optional<std::string> expected_event_id(std::string_view input) {
  static simdjson::dom::parser parser;
  simdjson::dom::array msg;
  if (parser.parse(input.data(), input.size()).get_array().get(msg) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::string_view verb;
  std::string_view id;
  simdjson::dom::object event;
  if (msg.at(0).get_string().get(verb) != simdjson::SUCCESS ||
      (verb != "EVENT" && verb != "AUTH") ||
      msg.at(1).get_object().get(event) != simdjson::SUCCESS ||
      event["id"].get_string().get(id) != simdjson::SUCCESS || !is_hex64(id)) {
    return std::string();
  }
  return std::string(id);
}

void check_error(std::string_view input, const MessageError& e, const Limits& limits) {
  check_status(e.status);
  // The tolerant scan that recovers the id of a refused frame reads valid JSON as JSON does:
  // never an id from content, tags or a nested value, and never misses the event's own.
  if (std::optional<std::string> expected = expected_event_id(input)) {
    require(e.event_id == *expected, "event_id is not the event object's own readable id");
  }
  if (!e.event_id.empty()) require(is_hex64(e.event_id), "event_id is not 64 hex digits");
  if (!e.sub_id.empty()) {
    require(utf8_chars(e.sub_id) <= limits.max_subid_length, "reported sub_id is over the limit");
  }
  const std::string reply = error_reply(e);
  simdjson::dom::array arr = parse_reply(reply, "error_reply is not a JSON array");
  const std::string_view verb = string_at(arr, 0, "error_reply has no verb");
  const std::string_view message = e.status.message();
  if ((e.verb == Verb::kEvent || e.verb == Verb::kAuth) && !e.event_id.empty()) {
    require(verb == "OK" && arr.size() == 4, "rejected EVENT with an id is not answered OK");
    require(string_at(arr, 1, "OK id") == e.event_id, "OK names another id");
    require(arr.at(2).is_bool() && !arr.at(2).get_bool().value_unsafe(), "OK is not false");
    require(string_at(arr, 3, "OK message") == message, "OK message differs from the status");
  } else if ((e.verb == Verb::kReq || e.verb == Verb::kCount) && !e.sub_id.empty()) {
    require(verb == "CLOSED" && arr.size() == 3, "rejected REQ with a sub id is not CLOSED");
    require(string_at(arr, 1, "CLOSED sub id") == e.sub_id, "CLOSED names another sub id");
    require(string_at(arr, 2, "CLOSED message") == message, "CLOSED message differs");
  } else if ((e.verb == Verb::kNegOpen || e.verb == Verb::kNegMsg) && !e.sub_id.empty()) {
    require(verb == "NEG-ERR" && arr.size() == 3, "rejected NEG-* with a sub id is not NEG-ERR");
    require(string_at(arr, 1, "NEG-ERR sub id") == e.sub_id, "NEG-ERR names another sub id");
    require(string_at(arr, 2, "NEG-ERR message") == message, "NEG-ERR message differs");
  } else {
    require(verb == "NOTICE" && arr.size() == 2, "other rejections are not a NOTICE");
    require(string_at(arr, 1, "NOTICE message") == message, "NOTICE message differs");
  }
}

// Lists are sorted and free of repeats, and tag conditions sorted by name with one per name:
// matches() binary-searches them.
template <typename T>
bool sorted_unique(const std::vector<T>& v) {
  return std::adjacent_find(v.begin(), v.end(), [](const T& a, const T& b) { return !(a < b); }) ==
         v.end();
}

void check_filter(const Filter& f, const Limits& limits) {
  if (f.ids) require(sorted_unique(*f.ids), "filter ids not sorted and unique");
  if (f.authors) require(sorted_unique(*f.authors), "filter authors not sorted and unique");
  if (f.kinds) require(sorted_unique(*f.kinds), "filter kinds not sorted and unique");
  for (std::size_t i = 0; i < f.tags.size(); ++i) {
    require(sorted_unique(f.tags[i].values), "tag condition values not sorted and unique");
    if (i > 0) require(f.tags[i - 1].name < f.tags[i].name, "tag conditions not sorted by name");
  }
  if (f.search) require(f.search->size() <= limits.max_search_bytes, "search over its limit");

  const std::string json = f.to_json();
  Result<Filter> again = parse_filter(json, limits);
  require(again.is_ok(), "Filter::to_json() does not re-parse under the same limits");
  require(again->to_json() == json, "Filter::to_json() is not byte-identical after re-parse");
  for (const EventPtr& ev : sample_events()) {
    require(f.matches(*ev) == again->matches(*ev), "re-parsed filter matches differently");
  }
}

void check_sub_id(const std::string& sub_id, const Limits& limits) {
  require(!sub_id.empty(), "accepted an empty sub id");
  require(utf8_chars(sub_id) <= limits.max_subid_length, "accepted a sub id over the limit");
  simdjson::dom::array eose = parse_reply(eose_message(sub_id), "EOSE is not a JSON array");
  require(string_at(eose, 1, "EOSE sub id") == sub_id, "EOSE does not carry the sub id");
  simdjson::dom::array closed =
      parse_reply(closed_message(sub_id, "error: x"), "CLOSED is not a JSON array");
  require(string_at(closed, 1, "CLOSED sub id") == sub_id, "CLOSED does not carry the sub id");
}

void check_filters(const std::string& sub_id, const std::vector<Filter>& filters,
                   const Limits& limits) {
  check_sub_id(sub_id, limits);
  require(!filters.empty() && filters.size() <= limits.max_filters, "filter count off limits");
  for (const Filter& f : filters) check_filter(f, limits);
  for (const EventPtr& ev : sample_events()) {
    bool any = false;
    for (const Filter& f : filters) any = any || f.matches(*ev);
    require(matches_any(filters, *ev) == any, "matches_any disagrees with matches");
  }
}

// A filter of the event's own id, author, kind, time and single-letter tags.
Filter self_filter(const Event& ev, const Limits& limits) {
  Filter f;
  f.ids = std::vector<EventId>{ev.id()};
  f.authors = std::vector<Pubkey>{ev.pubkey()};
  f.kinds = std::vector<std::uint16_t>{ev.kind()};
  f.since = ev.created_at();
  f.until = ev.created_at();
  for (const Tag& tag : ev.tags()) {
    if (f.tags.size() >= limits.max_filter_tags) break;
    if (tag.size() < 2 || tag[0].size() != 1) continue;
    const char name = tag[0][0];
    if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z'))) continue;
    auto same = [name](const TagCondition& c) { return c.name == name; };
    if (std::find_if(f.tags.begin(), f.tags.end(), same) != f.tags.end()) continue;
    f.tags.push_back(TagCondition{name, {tag[1]}});
  }
  std::sort(f.tags.begin(), f.tags.end(),
            [](const TagCondition& a, const TagCondition& b) { return a.name < b.name; });
  return f;
}

void check_event(const Event& ev, const Limits& limits) {
  const std::string_view json = ev.json();
  require(json.size() <= limits.max_event_bytes, "accepted an event over max_event_bytes");
  require(ev.content().size() <= limits.max_content_bytes, "accepted content over its limit");
  require(ev.tags().size() <= limits.max_event_tags, "accepted too many tags");
  require(ev.id_hex() == to_hex(ev.id()), "id_hex() disagrees with id()");
  require(ev.pubkey_hex() == to_hex(ev.pubkey()), "pubkey_hex() disagrees with pubkey()");
  require(ev.sig_hex() == to_hex(ev.sig()), "sig_hex() disagrees with sig()");

  Result<EventPtr> again = parse_event(json, limits);
  require(again.is_ok(), "canonical event JSON does not re-parse under the same limits");
  require((*again)->json() == json, "canonical event JSON is not byte-identical after re-parse");

  const std::string frame = "[\"EVENT\"," + std::string(json) + "]";
  Result<ClientMessage, MessageError> framed = parse_client_message(frame, limits);
  require(framed.is_ok(), "canonical EVENT frame does not re-parse");
  require(std::get<EventMessage>(*framed).event->json() == json, "framed re-parse differs");

  simdjson::dom::array out = parse_reply(event_message("s", ev), "EVENT out is not JSON");
  require(out.size() == 3, "EVENT out does not have three elements");

  // Hashing must not fail on anything the parser accepts; its verdict is irrelevant here.
  (void)ev.check_id();

  const Filter self = self_filter(ev, Limits());
  require(self.matches(ev), "an event does not match a filter of its own fields");
  check_filter(self, Limits());
}

// A negentropy message from a client, answered by a responder over a small set: a reply that
// starts with the version byte, or an "invalid:" refusal; and the NEG-MSG that carries it is
// JSON.
void check_negentropy(const std::string& sub_id, const std::string& message, const Limits& limits) {
  check_sub_id(sub_id, limits);
  static const NegentropySet set = [] {
    std::vector<NegentropyItem> items;
    for (const EventPtr& ev : sample_events()) {
      items.push_back({static_cast<std::uint64_t>(ev->created_at()), ev->id()});
    }
    return make_negentropy_set(std::move(items));
  }();
  NegentropyOptions options;
  options.frame_size_limit = 4096;
  Result<std::string> reply = Negentropy(set, options).respond(message);
  if (!reply) {
    check_status(reply.error());
    require(reply.error().message().rfind("invalid: ", 0) == 0, "negentropy refusal not invalid:");
    return;
  }
  require(!reply->empty() && static_cast<std::uint8_t>(reply->front()) == kNegentropyVersion,
          "negentropy reply does not start with the version");
  require(reply->size() <= 4096, "negentropy reply over the frame size limit");
  simdjson::dom::array out = parse_reply(neg_msg_message(sub_id, *reply), "NEG-MSG is not JSON");
  require(string_at(out, 1, "NEG-MSG sub id") == sub_id, "NEG-MSG does not carry the sub id");
}

void check_message(const ClientMessage& m, const Limits& limits) {
  if (const auto* e = std::get_if<EventMessage>(&m)) {
    check_event(*e->event, limits);
  } else if (const auto* a = std::get_if<AuthMessage>(&m)) {
    check_event(*a->event, limits);
  } else if (const auto* r = std::get_if<ReqMessage>(&m)) {
    check_filters(r->sub_id, r->filters, limits);
  } else if (const auto* c = std::get_if<CountMessage>(&m)) {
    check_filters(c->sub_id, c->filters, limits);
    parse_reply(count_message(c->sub_id, 42), "COUNT out is not JSON");
  } else if (const auto* cl = std::get_if<CloseMessage>(&m)) {
    check_sub_id(cl->sub_id, limits);
  } else if (const auto* open = std::get_if<NegOpenMessage>(&m)) {
    check_filter(open->filter, limits);
    check_negentropy(open->sub_id, open->message, limits);
  } else if (const auto* msg = std::get_if<NegMsgMessage>(&m)) {
    check_negentropy(msg->sub_id, msg->message, limits);
  } else if (const auto* close = std::get_if<NegCloseMessage>(&m)) {
    check_sub_id(close->sub_id, limits);
  }
}

void fuzz_with(std::string_view input, const Limits& limits) {
  Result<ClientMessage, MessageError> msg = parse_client_message(input, limits);
  if (msg) {
    check_message(*msg, limits);
  } else {
    check_error(input, msg.error(), limits);
  }

  Result<EventPtr> ev = parse_event(input, limits);
  if (ev) {
    check_event(**ev, limits);
  } else {
    check_status(ev.error());
  }

  Result<Filter> f = parse_filter(input, limits);
  if (f) {
    check_filter(*f, limits);
  } else {
    check_status(f.error());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Limits kDefault;
  static const Limits kTiny = tiny_limits();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz_with(input, kDefault);
  fuzz_with(input, kTiny);
  return 0;
}
