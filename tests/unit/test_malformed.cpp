// Malformed-input cases, table-driven. Each row is a frame a hostile or buggy client could send,
// the exact status message it must get, and the NIP-01 answer error_reply() must build from it:
// OK false when the event id was readable, CLOSED when the subscription id was, NOTICE otherwise.
// Clients and relay operators read these messages, so each one is pinned to the letter.
#include <simdjson.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <stdexcept>
#include <string>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/message.hpp"
#include "test_util.hpp"

using namespace relaycore;

namespace {

// Which parser a row goes through.
enum class Via { kMessage, kEvent, kFilter };

// The relay message error_reply() must answer a rejected frame with.
enum class Answer { kNotice, kOkFalse, kClosed };

struct Case {
  std::string name;
  std::string input;
  std::string message;  // the exact Status::message(), prefix included
  Via via = Via::kMessage;
  Answer answer = Answer::kNotice;
  std::string target;  // the event id (kOkFalse) or sub id (kClosed) the answer names
  Limits limits;
  std::string reply;  // when set, the exact error_reply() frame

  Case& under(const Limits& l) {
    limits = l;
    return *this;
  }
  Case& replies(std::string r) {
    reply = std::move(r);
    return *this;
  }
};

// A valid signed event that every event row mutates, so each row breaks exactly one thing.
struct Base {
  EventPtr event;
  std::string json;  // canonical, as sent by a well-behaved client
  std::string id;
  std::string pubkey;
  std::string sig;
};

const Base& base() {
  static const Base b = [] {
    Base x;
    x.event = test::signed_event(test::alice(), 1, 1700000000, "hello",
                                 {{"e", std::string(64, 'a')}, {"t", "nostr"}});
    x.json = std::string(x.event->json());
    x.id = std::string(x.event->id_hex());
    x.pubkey = std::string(x.event->pubkey_hex());
    x.sig = std::string(x.event->sig_hex());
    return x;
  }();
  return b;
}

// The base event JSON with the first `from` replaced by `to`.
std::string edit(const std::string& from, const std::string& to) {
  std::string s = base().json;
  std::size_t at = s.find(from);
  if (at == std::string::npos) throw std::invalid_argument("edit: no \"" + from + "\" in event");
  return s.replace(at, from.size(), to);
}

// The raw JSON value each base field has, so a row can swap in another.
std::string original(const std::string& field) {
  const Base& b = base();
  if (field == "id") return "\"" + b.id + "\"";
  if (field == "pubkey") return "\"" + b.pubkey + "\"";
  if (field == "sig") return "\"" + b.sig + "\"";
  if (field == "created_at") return "1700000000";
  if (field == "kind") return "1";
  if (field == "tags") return "[[\"e\",\"" + std::string(64, 'a') + "\"],[\"t\",\"nostr\"]]";
  if (field == "content") return "\"hello\"";
  throw std::invalid_argument("original: no field " + field);
}

// The base event with one field's value replaced by raw JSON.
std::string with_field(const std::string& field, const std::string& raw) {
  return edit("\"" + field + "\":" + original(field), "\"" + field + "\":" + raw);
}

// The base event without one field.
std::string without_field(const std::string& field) {
  std::string kv = "\"" + field + "\":" + original(field);
  return field == "id" ? edit(kv + ",", "") : edit("," + kv, "");
}

std::string frame(const std::string& event_json, const std::string& verb = "EVENT") {
  return "[\"" + verb + "\"," + event_json + "]";
}

std::string req(const std::string& filters, const std::string& sub = "s") {
  return "[\"REQ\",\"" + sub + "\"," + filters + "]";
}

Case notice(std::string name, std::string input, std::string message) {
  Case c;
  c.name = std::move(name);
  c.input = std::move(input);
  c.message = std::move(message);
  return c;
}

// A rejected EVENT or AUTH whose id was readable: answered OK false for that id.
Case ok_false(std::string name, std::string input, std::string message) {
  Case c = notice(std::move(name), std::move(input), std::move(message));
  c.answer = Answer::kOkFalse;
  c.target = base().id;
  return c;
}

// A rejected REQ or COUNT whose sub id was readable: answered CLOSED for that sub id.
Case closed(std::string name, std::string input, std::string message, std::string sub = "s") {
  Case c = notice(std::move(name), std::move(input), std::move(message));
  c.answer = Answer::kClosed;
  c.target = std::move(sub);
  return c;
}

Case event_only(std::string name, std::string input, std::string message) {
  Case c = notice(std::move(name), std::move(input), std::move(message));
  c.via = Via::kEvent;
  return c;
}

Case filter_only(std::string name, std::string input, std::string message) {
  Case c = notice(std::move(name), std::move(input), std::move(message));
  c.via = Via::kFilter;
  return c;
}

Limits limits_with(std::size_t Limits::*field, std::size_t value) {
  Limits l;
  l.*field = value;
  return l;
}

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// A reply is sent as a WebSocket text frame, so it must be valid JSON (and so valid UTF-8)
// whatever the client sent, and must carry the status message as its last element.
void check_reply_is_json(const std::string& reply, Answer answer, const std::string& message) {
  simdjson::dom::parser parser;
  simdjson::dom::array arr;
  REQUIRE(parser.parse(reply).get_array().get(arr) == simdjson::SUCCESS);
  std::string_view verb;
  REQUIRE(arr.at(0).get_string().get(verb) == simdjson::SUCCESS);
  const std::size_t size = arr.size();
  switch (answer) {
    case Answer::kNotice:
      CHECK(verb == "NOTICE");
      CHECK(size == 2);
      break;
    case Answer::kOkFalse:
      CHECK(verb == "OK");
      CHECK(size == 4);
      CHECK(arr.at(2).get_bool().value_unsafe() == false);
      break;
    case Answer::kClosed:
      CHECK(verb == "CLOSED");
      CHECK(size == 3);
      break;
  }
  std::string_view last;
  REQUIRE(arr.at(size - 1).get_string().get(last) == simdjson::SUCCESS);
  CHECK(last == message);
}

void check_case(const Case& c) {
  INFO("case: " << c.name);
  if (c.via == Via::kEvent) {
    Result<EventPtr> r = parse_event(c.input, c.limits);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.error().code() == StatusCode::kInvalid);
    CHECK(r.error().message() == c.message);
    return;
  }
  if (c.via == Via::kFilter) {
    Result<Filter> r = parse_filter(c.input, c.limits);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.error().code() == StatusCode::kInvalid);
    CHECK(r.error().message() == c.message);
    return;
  }
  Result<ClientMessage, MessageError> r = parse_client_message(c.input, c.limits);
  REQUIRE_FALSE(r.is_ok());
  const MessageError& e = r.error();
  CHECK(e.status.code() == StatusCode::kInvalid);
  CHECK(e.status.message() == c.message);
  const std::string reply = error_reply(e);
  switch (c.answer) {
    case Answer::kNotice:
      CHECK(reply == notice_message(c.message));
      break;
    case Answer::kOkFalse:
      CHECK(e.event_id == c.target);
      CHECK(reply == ok_message(c.target, false, c.message));
      break;
    case Answer::kClosed:
      CHECK(e.sub_id == c.target);
      CHECK(reply == closed_message(c.target, c.message));
      break;
  }
  if (!c.reply.empty()) CHECK(reply == c.reply);
  check_reply_is_json(reply, c.answer, c.message);
}

void check_all(const std::vector<Case>& cases) {
  for (const Case& c : cases) check_case(c);
}

// --- The tables, one per category. ---

std::vector<Case> bad_json_cases() {
  const std::string kMalformed = "invalid: malformed JSON";
  const std::string kNumber = "invalid: malformed or out-of-range JSON number";
  const std::string kLiteral = "invalid: malformed JSON literal (expected true, false or null)";
  return {
      notice("empty frame", "", "invalid: empty message")
          .replies(R"(["NOTICE","invalid: empty message"])"),
      notice("whitespace only", " \n\t\r ", "invalid: empty message"),
      notice("unclosed array", R"(["CLOSE","s")", kMalformed),
      notice("extra closing bracket", R"(["CLOSE","s"]])", kMalformed),
      notice("two messages in one frame", R"(["CLOSE","s"]["CLOSE","t"])", kMalformed),
      notice("trailing garbage", R"(["CLOSE","s"] x)", kMalformed),
      notice("trailing NUL byte", std::string("[\"CLOSE\",\"s\"]\0", 14), kMalformed),
      notice("single quotes", R"(["CLOSE",'s'])", kMalformed),
      notice("unquoted key", R"(["REQ","s",{kinds:[1]}])", kMalformed),
      notice("trailing comma", R"(["REQ","s",{"kinds":[1,]}])", kMalformed),
      notice("missing colon", R"(["REQ","s",{"kinds"[1]}])", kMalformed),
      notice("byte order mark", "\xEF\xBB\xBF[\"CLOSE\",\"s\"]", kMalformed),
      notice("NaN", R"(["REQ","s",{"limit":NaN}])", kMalformed),
      notice("unterminated string", R"(["CLOSE","s])", "invalid: unterminated JSON string"),
      notice("raw control byte in a string", "[\"CLOSE\",\"a\x01\"]",
             "invalid: control characters in JSON strings must be escaped"),
      ok_false("raw newline in content", frame(with_field("content", "\"line\nbreak\"")),
               "invalid: control characters in JSON strings must be escaped")
          .replies("[\"OK\",\"" + base().id +
                   "\",false,\"invalid: control characters in JSON strings must be escaped\"]"),
      notice("unknown escape", R"(["CLOSE","\x41"])",
             "invalid: invalid escape or lone surrogate in JSON string"),
      notice("short unicode escape", R"(["CLOSE","\u12"])",
             "invalid: invalid escape or lone surrogate in JSON string"),
      notice("non-hex unicode escape", R"(["CLOSE","\u12G4"])",
             "invalid: invalid escape or lone surrogate in JSON string"),
      notice("misspelled true", R"(["REQ","s",{"limit":tru}])", kLiteral),
      notice("misspelled null", R"(["REQ","s",{"limit":nul}])", kLiteral),
      notice("capitalised False", R"(["REQ","s",{"limit":False}])", kMalformed),
      notice("leading zero", R"(["REQ","s",{"limit":01}])", kNumber),
      notice("bare minus", R"(["REQ","s",{"limit":-}])", kNumber),
      notice("dot without digits", R"(["REQ","s",{"limit":1.}])", kNumber),
      notice("hex number", R"(["REQ","s",{"limit":0x10}])", kNumber),
      notice("infinite number", R"(["REQ","s",{"since":1e400}])", kNumber),
      ok_false("created_at beyond uint64", frame(with_field("created_at", "99999999999999999999")),
               kNumber),
  };
}

std::vector<Case> wrong_type_cases() {
  return {
      ok_false("pubkey is a number", frame(with_field("pubkey", "1")),
               "invalid: pubkey must be a string, not integer"),
      ok_false("sig is null", frame(with_field("sig", "null")),
               "invalid: sig must be a string, not null")
          .replies("[\"OK\",\"" + base().id +
                   "\",false,\"invalid: sig must be a string, not null\"]"),
      ok_false("created_at is a string", frame(with_field("created_at", "\"1700000000\"")),
               "invalid: created_at must be an integer, not string"),
      ok_false("created_at has a fraction", frame(with_field("created_at", "1700000000.5")),
               "invalid: created_at must be an integer, not non-integer number"),
      ok_false("created_at in exponent form", frame(with_field("created_at", "1.7e9")),
               "invalid: created_at must be an integer, not non-integer number"),
      ok_false("kind is a boolean", frame(with_field("kind", "true")),
               "invalid: kind must be an integer, not boolean"),
      ok_false("kind is a string", frame(with_field("kind", "\"1\"")),
               "invalid: kind must be an integer, not string"),
      ok_false("kind is 1.0", frame(with_field("kind", "1.0")),
               "invalid: kind must be an integer, not non-integer number"),
      ok_false("negative kind", frame(with_field("kind", "-1")),
               "invalid: kind must be between 0 and 65535"),
      ok_false("kind 65536", frame(with_field("kind", "65536")),
               "invalid: kind must be between 0 and 65535"),
      ok_false("negative created_at", frame(with_field("created_at", "-1")),
               "invalid: created_at must not be negative"),
      ok_false("created_at beyond int64", frame(with_field("created_at", "18446744073709551615")),
               "invalid: created_at is out of range"),
      ok_false("tags is an object", frame(with_field("tags", "{}")),
               "invalid: tags must be an array, not object"),
      ok_false("tags is null", frame(with_field("tags", "null")),
               "invalid: tags must be an array, not null"),
      ok_false("content is a number", frame(with_field("content", "5")),
               "invalid: content must be a string, not integer"),
      ok_false("content is an array", frame(with_field("content", "[\"hello\"]")),
               "invalid: content must be a string, not array"),
      notice("id is a number", frame(with_field("id", "5")),
             "invalid: id must be a string, not integer"),
      notice("event is a string", R"(["EVENT","hello"])",
             "invalid: event must be a JSON object, not string"),
      notice("event is an array", frame("[" + base().json + "]"),
             "invalid: event must be a JSON object, not array"),
      notice("AUTH with a bare challenge", R"(["AUTH","challenge-string"])",
             "invalid: event must be a JSON object, not string"),
      notice("sub id is a number", R"(["REQ",5,{}])",
             "invalid: subscription id must be a string, not integer"),
      notice("CLOSE sub id is null", R"(["CLOSE",null])",
             "invalid: subscription id must be a string, not null"),
      closed("filter is an array", req("[]"), "invalid: filter must be a JSON object, not array")
          .replies(R"(["CLOSED","s","invalid: filter must be a JSON object, not array"])"),
      closed("COUNT filter is a string", R"(["COUNT","c","{}"])",
             "invalid: filter must be a JSON object, not string", "c"),
      event_only("parse_event of an array", "[]",
                 "invalid: event must be a JSON object, not array"),
      filter_only("parse_filter of a number", "7",
                  "invalid: filter must be a JSON object, not integer"),
  };
}

std::vector<Case> bad_hex_cases() {
  const Base& b = base();
  std::string upper_id = b.id;
  for (char& ch : upper_id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  std::string upper_pubkey = b.pubkey;
  for (char& ch : upper_pubkey) {
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  const std::string two_byte_char = "\xC3\xA9";  // é: two bytes, one character
  return {
      // Upper-case hex is still an id the client is waiting on: OK false, echoing it as sent.
      [&] {
        Case c = notice("id in uppercase", frame(with_field("id", "\"" + upper_id + "\"")),
                        "invalid: id must be lowercase hex");
        c.answer = Answer::kOkFalse;
        c.target = upper_id;
        return c;
      }()
          .replies("[\"OK\",\"" + upper_id + "\",false,\"invalid: id must be lowercase hex\"]"),
      // Without a readable id there is nothing to answer OK for, so these are NOTICEs.
      notice("id with a g", frame(with_field("id", "\"g" + b.id.substr(1) + "\"")),
             "invalid: id must be lowercase hex"),
      notice("id with an escaped NUL", frame(with_field("id", "\"\\u0000" + b.id.substr(1) + "\"")),
             "invalid: id must be lowercase hex"),
      ok_false("pubkey in uppercase", frame(with_field("pubkey", "\"" + upper_pubkey + "\"")),
               "invalid: pubkey must be lowercase hex"),
      ok_false("pubkey with 0x prefix",
               frame(with_field("pubkey", "\"0x" + b.pubkey.substr(2) + "\"")),
               "invalid: pubkey must be lowercase hex"),
      ok_false("pubkey with a space",
               frame(with_field("pubkey", "\"" + b.pubkey.substr(0, 63) + " \"")),
               "invalid: pubkey must be lowercase hex"),
      ok_false("sig ending in z", frame(with_field("sig", "\"" + b.sig.substr(0, 127) + "z\"")),
               "invalid: sig must be lowercase hex"),
      // 128 bytes, but 127 characters: the length is right in bytes and the content is not hex.
      ok_false("sig with a two-byte character",
               frame(with_field("sig", "\"" + two_byte_char + b.sig.substr(2) + "\"")),
               "invalid: sig must be lowercase hex"),
      closed("filter ids in uppercase", req("{\"ids\":[\"" + upper_id + "\"]}"),
             "invalid: filter \"ids\" values must be 64 lowercase hex characters"),
      closed("filter authors with a g", req("{\"authors\":[\"g" + b.pubkey.substr(1) + "\"]}"),
             "invalid: filter \"authors\" values must be 64 lowercase hex characters"),
      closed("filter authors as npub", req(R"({"authors":["npub1xyz"]})"),
             "invalid: filter \"authors\" values must be 64 lowercase hex characters"),
      filter_only("parse_filter ids with a dash", "{\"ids\":[\"" + b.id.substr(0, 63) + "-\"]}",
                  "invalid: filter \"ids\" values must be 64 lowercase hex characters"),
  };
}

std::vector<Case> bad_length_cases() {
  const Base& b = base();
  return {
      notice("id of 63", frame(with_field("id", "\"" + b.id.substr(0, 63) + "\"")),
             "invalid: id must be 64 hex characters, not 63"),
      notice("id of 65", frame(with_field("id", "\"" + b.id + "0\"")),
             "invalid: id must be 64 hex characters, not 65"),
      notice("empty id", frame(with_field("id", "\"\"")),
             "invalid: id must be 64 hex characters, not 0"),
      ok_false("pubkey of 63", frame(with_field("pubkey", "\"" + b.pubkey.substr(0, 63) + "\"")),
               "invalid: pubkey must be 64 hex characters, not 63"),
      ok_false("pubkey doubled", frame(with_field("pubkey", "\"" + b.pubkey + b.pubkey + "\"")),
               "invalid: pubkey must be 64 hex characters, not 128"),
      ok_false("sig of 127", frame(with_field("sig", "\"" + b.sig.substr(0, 127) + "\"")),
               "invalid: sig must be 128 hex characters, not 127"),
      ok_false("sig of 64", frame(with_field("sig", "\"" + b.sig.substr(0, 64) + "\"")),
               "invalid: sig must be 128 hex characters, not 64"),
      ok_false("empty sig", frame(with_field("sig", "\"\"")),
               "invalid: sig must be 128 hex characters, not 0"),
      notice("empty REQ sub id", R"(["REQ","",{}])", "invalid: subscription id must not be empty"),
      notice("empty CLOSE sub id", R"(["CLOSE",""])", "invalid: subscription id must not be empty"),
      notice("sub id of 65", req("{}", std::string(65, 's')),
             "invalid: subscription id is too long (max 64 characters)"),
      notice("sub id of 65 two-byte characters", req("{}", repeat("\xC3\xA9", 65)),
             "invalid: subscription id is too long (max 64 characters)"),
      closed("filter id of 65", req("{\"ids\":[\"" + b.id + "0\"]}"),
             "invalid: filter \"ids\" values must be 64 lowercase hex characters"),
      closed("filter id prefix", req("{\"ids\":[\"" + b.id.substr(0, 8) + "\"]}"),
             "invalid: filter \"ids\" values must be 64 lowercase hex characters"),
      closed("empty filter author", req(R"({"authors":[""]})"),
             "invalid: filter \"authors\" values must be 64 lowercase hex characters"),
  };
}

std::vector<Case> bad_utf8_cases() {
  const std::string kUtf8 = "invalid: message is not valid UTF-8";
  const std::string kEscape = "invalid: invalid escape or lone surrogate in JSON string";
  auto content = [](const std::string& raw) { return frame(with_field("content", raw)); };
  return {
      // Raw bytes: the whole frame is refused unparsed, and answered for the id read before them.
      ok_false("0xFF in content", content("\"a\xFF\""), kUtf8)
          .replies("[\"OK\",\"" + base().id + "\",false,\"invalid: message is not valid UTF-8\"]"),
      ok_false("truncated two-byte sequence", content("\"a\xC3\""), kUtf8),
      ok_false("overlong slash", content("\"\xC0\xAF\""), kUtf8),
      ok_false("overlong NUL", content("\"\xC0\x80\""), kUtf8),
      ok_false("overlong three-byte slash", content("\"\xE0\x80\xAF\""), kUtf8),
      ok_false("UTF-8 encoded surrogate", content("\"\xED\xA0\x80\""), kUtf8),
      ok_false("code point above U+10FFFF", content("\"\xF4\x90\x80\x80\""), kUtf8),
      notice("lone continuation byte in sub id", "[\"REQ\",\"s\x80\",{}]", kUtf8),
      ok_false("invalid byte in a tag value", frame(with_field("tags", "[[\"t\",\"nos\xFEtr\"]]")),
               kUtf8),
      ok_false("invalid byte in an event key", frame(edit("\"kind\"", "\"k\xFFind\"")), kUtf8),
      notice("invalid byte in a filter key", req("{\"#t\xFF\":[]}"), kUtf8),
      notice("invalid byte in a filter value", req("{\"#t\":[\"\xFE\"]}"), kUtf8),
      notice("invalid byte in the verb", "[\"EV\xFF\"]", kUtf8),
      // Escapes that would decode to a surrogate half, which UTF-8 cannot carry.
      ok_false("lone high surrogate in content", content(R"("\ud800")"), kEscape),
      ok_false("lone low surrogate in a tag value",
               frame(with_field("tags", R"([["t","\udc00"]])")), kEscape),
      notice("two high surrogates in sub id", R"(["REQ","\ud800\ud800",{}])", kEscape),
      notice("high surrogate then text", R"(["CLOSE","\ud83dx"])", kEscape),
      notice("surrogates in reverse order", R"(["CLOSE","\ude00\ud83d"])", kEscape),
      notice("lone surrogate in a filter key", req(R"({"\ud800":[]})"), kEscape),
      notice("lone surrogate in search", req(R"({"search":"\udfff"})"), kEscape),
      event_only("parse_event with 0xFF", with_field("content", "\"\xFF\""), kUtf8),
      filter_only("parse_filter with a lone surrogate", R"({"#t":["\udbff"]})", kEscape),
  };
}

std::vector<Case> duplicate_key_cases() {
  const Base& b = base();
  // 1 + 50 two-byte characters: quoting 64 bytes of it would split the 32nd character.
  const std::string long_key = "a" + repeat("\xC3\xA9", 50);
  const std::string long_key_shown = "a" + repeat("\xC3\xA9", 31) + "...";
  return {
      ok_false("id twice", frame(edit("{", "{\"id\":\"" + b.id + "\",")),
               "invalid: duplicate key \"id\" in event")
          .replies("[\"OK\",\"" + b.id +
                   "\",false,\"invalid: duplicate key \\\"id\\\" in event\"]"),
      ok_false("content twice with different values",
               frame(edit("\"content\":", "\"content\":\"other\",\"content\":")),
               "invalid: duplicate key \"content\" in event"),
      ok_false("id again as i\\u0064",
               frame(edit("}", ",\"i\\u0064\":\"" + std::string(64, 'b') + "\"}")),
               "invalid: duplicate key \"id\" in event"),
      ok_false("sig again as \\u0073ig", frame(edit("}", ",\"\\u0073ig\":\"" + b.sig + "\"}")),
               "invalid: duplicate key \"sig\" in event"),
      ok_false("tags twice", frame(edit("\"tags\":", "\"tags\":[],\"tags\":")),
               "invalid: duplicate key \"tags\" in event"),
      ok_false("unknown key twice", frame(edit("}", ",\"x\":1,\"x\":2}")),
               "invalid: duplicate key \"x\" in event"),
      closed("kinds twice", req(R"({"kinds":[1],"kinds":[2]})"),
             "invalid: duplicate key \"kinds\" in filter"),
      closed("#e again as \\u0023e", req(R"({"#e":["x"],"\u0023e":["y"]})"),
             "invalid: duplicate key \"#e\" in filter"),
      closed("limit again as lim\\u0069t", req(R"({"limit":1,"lim\u0069t":2})"),
             "invalid: duplicate key \"limit\" in filter"),
      closed("duplicate in the second filter", req(R"({},{"since":1,"since":1})"),
             "invalid: duplicate key \"since\" in filter"),
      closed("long duplicate key is cut between characters",
             req("{\"" + long_key + "\":1,\"" + long_key + "\":2}"),
             "invalid: duplicate key \"" + long_key_shown + "\" in filter"),
      event_only("parse_event with kind twice", edit("\"kind\":1", "\"kind\":1,\"kind\":1"),
                 "invalid: duplicate key \"kind\" in event"),
      filter_only("parse_filter with until twice", R"({"until":5,"until":6})",
                  "invalid: duplicate key \"until\" in filter"),
  };
}

std::vector<Case> deep_nesting_cases() {
  const std::string kDeep = "invalid: JSON is nested too deep (max depth 8)";
  std::string deep_objects;
  for (int i = 0; i < 2000; ++i) deep_objects += "{\"a\":";
  deep_objects += "1" + std::string(2000, '}');
  std::string deep_mixed;
  for (int i = 0; i < 1000; ++i) deep_mixed += "[{\"a\":";
  deep_mixed += "1";
  for (int i = 0; i < 1000; ++i) deep_mixed += "}]";
  const std::string deep_arrays = std::string(2000, '[') + std::string(2000, ']');
  return {
      notice("2000 nested arrays", deep_arrays, kDeep)
          .replies(R"j(["NOTICE","invalid: JSON is nested too deep (max depth 8)"])j"),
      notice("2000 nested objects", deep_objects, kDeep),
      notice("2000 alternating arrays and objects", deep_mixed, kDeep),
      notice("2000 nested arrays inside a REQ", req("{\"#t\":" + deep_arrays + "}"), kDeep),
      ok_false("2000 nested objects inside an event",
               frame(edit("}", ",\"x\":" + deep_objects + "}")), kDeep),
      notice("9 nested arrays", std::string(9, '[') + "1" + std::string(9, ']'), kDeep),
      // message, event and 7 levels of an unknown field: one level more than 8.
      ok_false("unknown event field one level too deep",
               frame(edit("}", ",\"x\":[[[[[[[1]]]]]]]}")), kDeep),
      ok_false("event under max depth 3", frame(base().json),
               "invalid: JSON is nested too deep (max depth 3)")
          .under(limits_with(&Limits::max_json_depth, 3)),
      notice("REQ filter tag under max depth 2", req(R"({"#t":["x"]})"),
             "invalid: JSON is nested too deep (max depth 2)")
          .under(limits_with(&Limits::max_json_depth, 2)),
      event_only("parse_event of 2000 nested objects", deep_objects, kDeep),
      filter_only("parse_filter of 2000 nested arrays", deep_arrays, kDeep),
  };
}

std::vector<Case> oversize_cases() {
  const Base& b = base();
  // Default limits: a 128 KiB frame, a 64 KiB event and content, 1 KiB tag values.
  const std::string huge_frame =
      frame(with_field("content", "\"" + std::string(131072, 'x') + "\""));
  const std::string just_over = "[\"CLOSE\",\"" + std::string(131073 - 12, 's') + "\"]";
  const std::string at_limit = "[\"CLOSE\",\"" + std::string(131072 - 12, 's') + "\"]";
  const std::string big_event = with_field("content", "\"" + std::string(65500, 'x') + "\"");
  std::string many_tags = "[";
  for (int i = 0; i < 2001; ++i) many_tags += std::string(i ? "," : "") + "[\"t\",\"x\"]";
  many_tags += "]";
  std::string long_tag = "[[\"t\"";
  for (int i = 0; i < 100; ++i) long_tag += ",\"v\"";
  long_tag += "]]";
  std::string many_filters;
  for (int i = 0; i < 17; ++i) many_filters += std::string(i ? "," : "") + "{}";
  std::string many_kinds = "{\"kinds\":[";
  for (int i = 0; i < 1001; ++i) many_kinds += std::string(i ? "," : "") + std::to_string(i);
  many_kinds += "]}";
  const std::string three_ids = "{\"ids\":[\"" + b.id + "\",\"" + std::string(64, 'b') + "\",\"" +
                                std::string(64, 'c') + "\"]}";
  return {
      ok_false("frame over 128 KiB", huge_frame,
               "invalid: event is too large (message of " + std::to_string(huge_frame.size()) +
                   " bytes, max 131072)"),
      notice("frame of 128 KiB plus one byte", just_over,
             "invalid: message is too large (131073 bytes, max 131072)")
          .replies(R"j(["NOTICE","invalid: message is too large (131073 bytes, max 131072)"])j"),
      // Exactly 128 KiB passes the size check and is refused for what is in it.
      notice("frame of exactly 128 KiB", at_limit,
             "invalid: subscription id is too long (max 64 characters)"),
      ok_false("content over 64 KiB",
               frame(with_field("content", "\"" + std::string(70000, 'x') + "\"")),
               "invalid: content is too large (70000 bytes, max 65536)"),
      // The row's JSON is already canonical, so its size is the event size the relay measures.
      ok_false("event over 64 KiB with content under it", frame(big_event),
               "invalid: event is too large (" + std::to_string(big_event.size()) +
                   " bytes, max 65536)"),
      ok_false("2001 tags", frame(with_field("tags", many_tags)),
               "invalid: too many tags (2001, max 2000)"),
      ok_false("tag value of 1025 bytes",
               frame(with_field("tags", "[[\"t\",\"" + std::string(1025, 'v') + "\"]]")),
               "invalid: tag 0 value is too large (1025 bytes, max 1024)"),
      ok_false("tag of 101 strings", frame(with_field("tags", long_tag)),
               "invalid: tag 0 has too many values (101, max 100)"),
      closed("search of 257 bytes", req("{\"search\":\"" + std::string(257, 'q') + "\"}"),
             "invalid: filter \"search\" is too long (257 bytes, max 256)"),
      closed("filter tag value of 1025 bytes", req("{\"#t\":[\"" + std::string(1025, 'v') + "\"]}"),
             "invalid: filter \"#t\" value is too large (1025 bytes, max 1024)"),
      closed("1001 kinds", req(many_kinds),
             "invalid: filter \"kinds\" has too many values (1001, max 1000)"),
      closed("17 filters", req(many_filters), "invalid: too many filters (17, max 16)"),
      // Small limits, as an embedding host might set them.
      notice("frame over a 32-byte limit", R"(["CLOSE","a-rather-long-subscription"])",
             "invalid: message is too large (38 bytes, max 32)")
          .under(limits_with(&Limits::max_message_bytes, 32)),
      ok_false("content over 4 bytes", frame(base().json),
               "invalid: content is too large (5 bytes, max 4)")
          .under(limits_with(&Limits::max_content_bytes, 4)),
      ok_false("event over 200 bytes", frame(base().json),
               "invalid: event is too large (" + std::to_string(b.json.size()) + " bytes, max 200)")
          .under(limits_with(&Limits::max_event_bytes, 200)),
      ok_false("2 tags over a limit of 1", frame(base().json), "invalid: too many tags (2, max 1)")
          .under(limits_with(&Limits::max_event_tags, 1)),
      ok_false("tag value over 8 bytes", frame(base().json),
               "invalid: tag 0 value is too large (64 bytes, max 8)")
          .under(limits_with(&Limits::max_tag_value_bytes, 8)),
      ok_false("tag of 2 strings over a limit of 1", frame(base().json),
               "invalid: tag 0 has too many values (2, max 1)")
          .under(limits_with(&Limits::max_tag_strings, 1)),
      notice("sub id over 4 characters", R"(["CLOSE","abcde"])",
             "invalid: subscription id is too long (max 4 characters)")
          .under(limits_with(&Limits::max_subid_length, 4)),
      closed("search over 5 bytes", req(R"({"search":"nostr relay"})"),
             "invalid: filter \"search\" is too long (11 bytes, max 5)")
          .under(limits_with(&Limits::max_search_bytes, 5)),
      closed("3 ids over a limit of 2", req(three_ids),
             "invalid: filter \"ids\" has too many values (3, max 2)")
          .under(limits_with(&Limits::max_filter_values, 2)),
      closed("3 #t values over a limit of 2", req(R"({"#t":["a","b","c"]})"),
             "invalid: filter \"#t\" has too many values (3, max 2)")
          .under(limits_with(&Limits::max_filter_values, 2)),
      closed("3 tag conditions over a limit of 2", req(R"({"#a":[],"#b":[],"#c":[]})"),
             "invalid: filter has too many tag conditions (max 2)")
          .under(limits_with(&Limits::max_filter_tags, 2)),
      closed("COUNT with 2 filters over a limit of 1", R"(["COUNT","c",{},{}])",
             "invalid: too many filters (2, max 1)", "c")
          .under(limits_with(&Limits::max_filters, 1)),
      event_only(
          "parse_event over a 100-byte limit", base().json,
          "invalid: event is too large (" + std::to_string(b.json.size()) + " bytes, max 100)")
          .under(limits_with(&Limits::max_message_bytes, 100)),
      filter_only("parse_filter over an 8-byte limit", R"({"kinds":[1,2,3]})",
                  "invalid: filter is too large (17 bytes, max 8)")
          .under(limits_with(&Limits::max_message_bytes, 8)),
  };
}

std::vector<Case> bad_tag_cases() {
  auto tags = [](const std::string& raw) { return frame(with_field("tags", raw)); };
  return {
      ok_false("tag is a number", tags("[5]"), "invalid: tag 0 must be an array, not integer"),
      ok_false("tag is an object", tags(R"([{"e":"x"}])"),
               "invalid: tag 0 must be an array, not object"),
      ok_false("second tag is a string", tags(R"([["e","x"],"t"])"),
               "invalid: tag 1 must be an array, not string"),
      ok_false("empty tag", tags("[[]]"), "invalid: tag 0 is empty")
          .replies("[\"OK\",\"" + base().id + "\",false,\"invalid: tag 0 is empty\"]"),
      ok_false("empty tag between good ones", tags(R"([["e","x"],[],["t"]])"),
               "invalid: tag 1 is empty"),
      ok_false("tag value is a number", tags(R"([["e",1]])"),
               "invalid: tag 0 must hold only strings, not integer"),
      ok_false("tag value is null", tags(R"([["e",null]])"),
               "invalid: tag 0 must hold only strings, not null"),
      ok_false("tag value is a fraction", tags(R"([["e",1.5]])"),
               "invalid: tag 0 must hold only strings, not non-integer number"),
      ok_false("tag name is a boolean", tags("[[true]]"),
               "invalid: tag 0 must hold only strings, not boolean"),
      ok_false("tag value is an array", tags(R"([["e",["x"]]])"),
               "invalid: tag 0 must hold only strings, not array"),
      ok_false("tag value is an object", tags(R"([["e",{"x":1}]])"),
               "invalid: tag 0 must hold only strings, not object"),
      ok_false("tags is a string", tags(R"("e")"), "invalid: tags must be an array, not string"),
  };
}

std::vector<Case> bad_filter_cases() {
  const std::string long_key = "a" + repeat("\xC3\xA9", 50);
  return {
      closed("kinds is a string", req(R"({"kinds":"1"})", "s1"),
             "invalid: filter \"kinds\" must be an array, not string", "s1")
          .replies(R"(["CLOSED","s1","invalid: filter \"kinds\" must be an array, not string"])"),
      closed("negative kind", req(R"({"kinds":[-1]})"),
             "invalid: filter \"kinds\" values must be between 0 and 65535"),
      closed("kind 65536", req(R"({"kinds":[65536]})"),
             "invalid: filter \"kinds\" values must be between 0 and 65535"),
      closed("kind beyond int64", req(R"({"kinds":[18446744073709551615]})"),
             "invalid: filter \"kinds\" values must be between 0 and 65535"),
      closed("fractional kind", req(R"({"kinds":[1.5]})"),
             "invalid: filter \"kinds\" must hold integers, not non-integer number"),
      closed("kind as a string", req(R"({"kinds":["1"]})"),
             "invalid: filter \"kinds\" must hold integers, not string"),
      closed("ids is a string", req(R"({"ids":"abc"})"),
             "invalid: filter \"ids\" must be an array, not string"),
      closed("ids holds a number", req(R"({"ids":[1]})"),
             "invalid: filter \"ids\" must hold strings, not integer"),
      closed("authors holds null", req(R"({"authors":[null]})"),
             "invalid: filter \"authors\" must hold strings, not null"),
      closed("negative since", req(R"({"since":-1})"),
             "invalid: filter \"since\" must not be negative"),
      closed("until as a string", req(R"({"until":"now"})"),
             "invalid: filter \"until\" must be an integer, not string"),
      closed("fractional since", req(R"({"since":1.5})"),
             "invalid: filter \"since\" must be an integer, not non-integer number"),
      closed("negative limit", req(R"({"limit":-1})"),
             "invalid: filter \"limit\" must not be negative"),
      closed("limit as a string", req(R"({"limit":"10"})"),
             "invalid: filter \"limit\" must be an integer, not string"),
      closed("limit of 1.0", req(R"({"limit":1.0})"),
             "invalid: filter \"limit\" must be an integer, not non-integer number"),
      closed("search as a number", req(R"({"search":5})"),
             "invalid: filter \"search\" must be a string, not integer"),
      closed("#e as a string", req(R"({"#e":"x"})"),
             "invalid: filter \"#e\" must be an array, not string"),
      closed("#t holds a nested array", req(R"({"#t":[["x"]]})"),
             "invalid: filter \"#t\" must hold strings, not array"),
      closed("#e holds a number", req(R"({"#e":[1]})"),
             "invalid: filter \"#e\" must hold strings, not integer"),
      closed("two-letter tag key", req(R"({"#ee":["x"]})"),
             "invalid: unknown filter field \"#ee\""),
      closed("digit tag key", req(R"({"#1":["x"]})"), "invalid: unknown filter field \"#1\""),
      closed("bare #", req(R"({"#":[]})"), "invalid: unknown filter field \"#\""),
      closed("unknown field", req(R"({"foo":1})"), "invalid: unknown filter field \"foo\""),
      closed("field names are case-sensitive", req(R"({"Kinds":[1]})"),
             "invalid: unknown filter field \"Kinds\""),
      // The key is quoted in the reply; cutting it inside a character would make the reply
      // invalid UTF-8, which WebSocket clients treat as a protocol error.
      closed("long unknown field is cut between characters", req("{\"" + long_key + "\":1}"),
             "invalid: unknown filter field \"a" + repeat("\xC3\xA9", 31) + "...\""),
      closed("bad second filter", req(R"({},{"kinds":{}})"),
             "invalid: filter \"kinds\" must be an array, not object"),
      closed("COUNT with a bad filter", R"(["COUNT","c",{"limit":true}])",
             "invalid: filter \"limit\" must be an integer, not boolean", "c"),
      filter_only("parse_filter of an array", "[]",
                  "invalid: filter must be a JSON object, not array"),
      filter_only("parse_filter with until null", R"({"until":null})",
                  "invalid: filter \"until\" must be an integer, not null"),
  };
}

std::vector<Case> bad_shape_cases() {
  const Base& b = base();
  const std::string verb_x40(40, 'X');
  const std::string wide_verb = "x" + repeat("\xC3\xA9", 20);
  return {
      notice("empty array", "[]", "invalid: message is an empty array"),
      notice("object", R"({"EVENT":{}})", "invalid: message must be a JSON array, not object"),
      notice("bare string", R"("REQ")", "invalid: message must be a JSON array, not string"),
      notice("bare number", "42", "invalid: message must be a JSON array, not integer"),
      notice("null", "null", "invalid: message must be a JSON array, not null"),
      notice("verb is a number", R"([1,"s"])",
             "invalid: message type must be a string, not integer"),
      notice("verb is an array", R"([["REQ"],"s",{}])",
             "invalid: message type must be a string, not array"),
      notice("unknown verb", R"(["HELLO"])", "invalid: unknown message type \"HELLO\"")
          .replies(R"(["NOTICE","invalid: unknown message type \"HELLO\""])"),
      notice("lowercase verb", frame(b.json, "event"), "invalid: unknown message type \"event\""),
      notice("verb with a trailing space", frame(b.json, "EVENT "),
             "invalid: unknown message type \"EVENT \""),
      notice("verb with an escaped NUL", R"(["EVENT\u0000",{}])",
             std::string("invalid: unknown message type \"EVENT\0\"", 38))
          .replies(R"(["NOTICE","invalid: unknown message type \"EVENT\u0000\""])"),
      notice("relay verb sent by a client", R"(["OK","x",true,""])",
             "invalid: unknown message type \"OK\""),
      notice("40-character verb", "[\"" + verb_x40 + "\"]",
             "invalid: unknown message type \"" + std::string(32, 'X') + "...\""),
      notice("long verb is cut between characters", "[\"" + wide_verb + "\"]",
             "invalid: unknown message type \"x" + repeat("\xC3\xA9", 15) + "...\""),
      notice("EVENT without an event", R"(["EVENT"])", "invalid: EVENT takes exactly one event"),
      ok_false("EVENT with two events", "[\"EVENT\"," + b.json + "," + b.json + "]",
               "invalid: EVENT takes exactly one event"),
      notice("AUTH without an event", R"(["AUTH"])", "invalid: AUTH takes exactly one event"),
      notice("REQ without a sub id", R"(["REQ"])", "invalid: REQ needs a subscription id"),
      closed("REQ without a filter", R"(["REQ","s"])", "invalid: REQ needs a filter")
          .replies(R"(["CLOSED","s","invalid: REQ needs a filter"])"),
      notice("COUNT without a sub id", R"(["COUNT"])", "invalid: COUNT needs a subscription id"),
      closed("COUNT without a filter", R"(["COUNT","c"])", "invalid: COUNT needs a filter", "c"),
      notice("CLOSE without a sub id", R"(["CLOSE"])",
             "invalid: CLOSE takes exactly one subscription id"),
      notice("CLOSE with two sub ids", R"(["CLOSE","a","b"])",
             "invalid: CLOSE takes exactly one subscription id"),
      notice("event without an id", frame(without_field("id")), "invalid: event is missing \"id\""),
      ok_false("event without a kind", frame(without_field("kind")),
               "invalid: event is missing \"kind\""),
      ok_false("event without tags", frame(without_field("tags")),
               "invalid: event is missing \"tags\""),
      ok_false("AUTH event without a sig", frame(without_field("sig"), "AUTH"),
               "invalid: event is missing \"sig\"")
          .replies("[\"OK\",\"" + b.id + "\",false,\"invalid: event is missing \\\"sig\\\"\"]"),
  };
}

std::vector<std::vector<Case>> all_tables() {
  return {bad_json_cases(), wrong_type_cases(),    bad_hex_cases(),      bad_length_cases(),
          bad_utf8_cases(), duplicate_key_cases(), deep_nesting_cases(), oversize_cases(),
          bad_tag_cases(),  bad_filter_cases(),    bad_shape_cases()};
}

}  // namespace

TEST_CASE("Malformed: bad JSON is refused, with OK false when the event id is readable",
          "[malformed]") {
  check_all(bad_json_cases());
}

TEST_CASE("Malformed: wrong JSON types and ranges name the field and what was found",
          "[malformed]") {
  check_all(wrong_type_cases());
}

TEST_CASE("Malformed: ids, keys and signatures must be lowercase hex", "[malformed]") {
  check_all(bad_hex_cases());
}

TEST_CASE("Malformed: fixed-length fields report the length found", "[malformed]") {
  check_all(bad_length_cases());
}

TEST_CASE("Malformed: invalid UTF-8 and lone surrogates are refused", "[malformed]") {
  check_all(bad_utf8_cases());
}

TEST_CASE("Malformed: duplicate keys are refused, escaped spellings included", "[malformed]") {
  check_all(duplicate_key_cases());
}

TEST_CASE("Malformed: deep nesting is refused without recursion", "[malformed]") {
  check_all(deep_nesting_cases());
}

TEST_CASE("Malformed: oversize frames and fields are refused against Limits", "[malformed]") {
  check_all(oversize_cases());
}

TEST_CASE("Malformed: tags must be non-empty arrays of strings", "[malformed]") {
  check_all(bad_tag_cases());
}

TEST_CASE("Malformed: bad filters close the subscription", "[malformed]") {
  check_all(bad_filter_cases());
}

TEST_CASE("Malformed: unknown verbs and wrong message shapes", "[malformed]") {
  check_all(bad_shape_cases());
}

TEST_CASE("Malformed: max_json_depth counts nested containers as Limits documents", "[malformed]") {
  // Limits says an event frame needs depth 4: message, event, tags, tag.
  const std::string event_frame = frame(base().json);
  CHECK(parse_client_message(event_frame, limits_with(&Limits::max_json_depth, 4)).is_ok());
  CHECK_FALSE(parse_client_message(event_frame, limits_with(&Limits::max_json_depth, 3)).is_ok());
  // With the default of 8, an unknown event field may hold 6 more levels, not 7.
  CHECK(parse_client_message(frame(edit("}", ",\"x\":[[[[[[1]]]]]]}"))).is_ok());
  CHECK_FALSE(parse_client_message(frame(edit("}", ",\"x\":[[[[[[[1]]]]]]]}"))).is_ok());
}

TEST_CASE("Malformed: size limits are inclusive", "[malformed]") {
  // A valid REQ padded with whitespace to exactly 128 KiB is accepted.
  std::string padded = R"(["REQ","s",{"kinds":[1]}])";
  padded.insert(1, 131072 - padded.size(), ' ');
  REQUIRE(padded.size() == 131072);
  CHECK(parse_client_message(padded).is_ok());
  // Content of exactly max_content_bytes, and a sub id of exactly max_subid_length.
  CHECK(
      parse_client_message(frame(base().json), limits_with(&Limits::max_content_bytes, 5)).is_ok());
  CHECK(parse_client_message(R"(["CLOSE","abcd"])", limits_with(&Limits::max_subid_length, 4))
            .is_ok());
}

TEST_CASE("Malformed: no frame in the tables throws or poisons the parser", "[malformed]") {
  const Base& b = base();
  const std::string good_event = frame(b.json);
  const std::string good_req = req(R"({"kinds":[1],"#t":["nostr"]})");
  for (const std::vector<Case>& table : all_tables()) {
    for (const Case& c : table) {
      INFO("after case: " << c.name);
      CHECK_NOTHROW((void)parse_client_message(c.input, c.limits));
      CHECK_NOTHROW((void)parse_event(c.input, c.limits));
      CHECK_NOTHROW((void)parse_filter(c.input, c.limits));
      // The thread's parser is reused; the next valid frame must read as if nothing happened.
      Result<ClientMessage, MessageError> ev = parse_client_message(good_event);
      REQUIRE(ev.is_ok());
      CHECK(std::get<EventMessage>(*ev).event->json() == b.json);
      Result<ClientMessage, MessageError> r = parse_client_message(good_req);
      REQUIRE(r.is_ok());
      CHECK(std::get<ReqMessage>(*r).filters.at(0).matches(*b.event));
    }
  }
}
