// An EVENT the parser refuses is answered OK false for its id whenever that id can be read, even
// when the rest of the frame cannot be parsed at all: a client waits for the OK of the id it
// sent. Only the event object's own "id" member counts, never an id-like string in its content,
// tags or a nested value; a frame with no such id gets a NOTICE.
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <string>

#include "relaycore/message.hpp"
#include "test_util.hpp"

using namespace relaycore;

namespace {

const std::string kDeep = "invalid: JSON is nested too deep (max depth 8)";
const std::string kNumber = "invalid: malformed or out-of-range JSON number";
const std::string kEscape = "invalid: invalid escape or lone surrogate in JSON string";
const std::string kMalformed = "invalid: malformed JSON";
const std::string kUnterminated = "invalid: unterminated JSON string";

const EventPtr& event() {
  static const EventPtr e = test::signed_event(test::alice(), 1, 1700000000, "hello", {{"t", "x"}});
  return e;
}

std::string id() { return std::string(event()->id_hex()); }

// An id-like string that is not the event's: what a misreading scan would answer for.
const std::string kDecoy(64, 'd');

// The event's JSON with everything after "id":"<id>", replaced by `rest`.
std::string after_id(const std::string& rest) {
  return "[\"EVENT\",{\"id\":\"" + id() + "\"," + rest;
}

// The canonical event with `member` (raw JSON "key":value) added before its first member.
std::string with_first(const std::string& member) {
  std::string json(event()->json());
  return "[\"EVENT\",{" + member + "," + json.substr(1) + "]";
}

void expect_ok_false(const std::string& frame, const std::string& event_id,
                     const std::string& message, const Limits& limits = Limits()) {
  Result<ClientMessage, MessageError> r = parse_client_message(frame, limits);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.error().event_id == event_id);
  CHECK(r.error().status.message() == message);
  CHECK(error_reply(r.error()) == ok_message(event_id, false, message));
}

void expect_notice(const std::string& frame, const std::string& message,
                   const Limits& limits = Limits()) {
  Result<ClientMessage, MessageError> r = parse_client_message(frame, limits);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.error().event_id.empty());
  CHECK(r.error().status.message() == message);
  CHECK(error_reply(r.error()) == notice_message(message));
}

}  // namespace

TEST_CASE("Event id: every class of unparseable EVENT with a readable id gets OK false",
          "[malformed]") {
  SECTION("nesting deeper than the limit") {
    expect_ok_false(after_id(R"("tags":[[[[[[[[["x"]]]]]]]]],"kind":1}])"), id(), kDeep);
    expect_ok_false(after_id("\"x\":" + std::string(3000, '[') + std::string(3000, ']') + "}]"),
                    id(), kDeep);
  }
  SECTION("a number out of range") {
    expect_ok_false(after_id(R"("created_at":1e400,"kind":1}])"), id(), kNumber);
    expect_ok_false(after_id(R"("kind":01}])"), id(), kNumber);
  }
  SECTION("a lone surrogate or a bad escape in a string") {
    expect_ok_false(after_id(R"("content":"\ud800"}])"), id(), kEscape);
    expect_ok_false(after_id(R"("tags":[["t","\x"]]}])"), id(), kEscape);
  }
  SECTION("a frame cut short after the id") {
    expect_ok_false("[\"EVENT\",{\"id\":\"" + id() + "\"", id(), kMalformed);
    expect_ok_false(after_id(R"("content":"hel)"), id(), kUnterminated);
    expect_ok_false(after_id(R"("tags":[["t")"), id(), kMalformed);
  }
  SECTION("raw control characters, invalid UTF-8 and trailing garbage") {
    expect_ok_false(after_id("\"content\":\"a\tb\"}]"), id(),
                    "invalid: control characters in JSON strings must be escaped");
    expect_ok_false(after_id("\"content\":\"\xFF\"}]"), id(),
                    "invalid: message is not valid UTF-8");
    expect_ok_false("[\"EVENT\"," + std::string(event()->json()) + "] x", id(), kMalformed);
  }
  SECTION("a bad field type and too many tags, in a frame that parses") {
    expect_ok_false(after_id(R"("kind":"1"}])"), id(),
                    "invalid: kind must be an integer, not string");
    Limits one_tag;
    one_tag.max_event_tags = 1;
    expect_ok_false(after_id(R"("tags":[["a"],["b"]]}])"), id(),
                    "invalid: too many tags (2, max 1)", one_tag);
  }
  SECTION("the id after other members, with id-like decoys before it") {
    expect_ok_false(with_first(R"("content":"\"id\":\")" + kDecoy + R"(\"","created_at":1e400)"),
                    id(), kNumber);
    expect_ok_false(with_first(R"("tags":[["id",")" + kDecoy + R"("],{"id":")" + kDecoy +
                               R"("}],"x":{"id":")" + kDecoy + R"("},"kind":-)"),
                    id(), kNumber);
    // A content that ends in an escaped backslash ends at the quote after it.
    expect_ok_false(with_first(R"("content":"a\\","kind":-)"), id(), kNumber);
  }
  SECTION("the id spelled with escapes, and whitespace between tokens") {
    expect_ok_false("[\"EVENT\",{\"i\\u0064\":\"" + id() + "\",\"kind\":-}]", id(), kNumber);
    char first[8];
    std::snprintf(first, sizeof(first), "\\u%04x", static_cast<unsigned>(id()[0]));
    expect_ok_false(std::string("[\"EVENT\",{\"id\":\"") + first + id().substr(1) + "\",", id(),
                    kMalformed);
    expect_ok_false(" [ \"EVENT\" ,\n { \"id\" :\t\"" + id() + "\" , \"kind\": 1e999 } ]", id(),
                    kNumber);
  }
  SECTION("an upper-case id is echoed as sent") {
    std::string upper = id();
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    expect_ok_false("[\"EVENT\",{\"id\":\"" + upper + "\",\"kind\":1e400}]", upper, kNumber);
  }
  SECTION("AUTH, and EVENT with two events") {
    expect_ok_false("[\"AUTH\",{\"id\":\"" + id() + "\",\"kind\":1e400}]", id(), kNumber);
    const std::string json(event()->json());
    expect_ok_false("[\"EVENT\"," + json + "," + json + "]", id(),
                    "invalid: EVENT takes exactly one event");
  }
}

TEST_CASE("Event id: a frame over the size limit is answered for its id", "[malformed]") {
  Limits limits;
  limits.max_message_bytes = 1000;
  const std::string content = "\"content\":\"" + std::string(2000, 'x') + "\"";
  const std::string first = after_id(content + ",\"kind\":1}]");
  expect_ok_false(first, id(),
                  "invalid: event is too large (message of " + std::to_string(first.size()) +
                      " bytes, max 1000)",
                  limits);
  // The id last, after the bulk, is found too.
  const std::string last = with_first(content);
  expect_ok_false(last, id(),
                  "invalid: event is too large (message of " + std::to_string(last.size()) +
                      " bytes, max 1000)",
                  limits);
  // An event without a readable id, and anything else, get a NOTICE.
  const std::string no_id = "[\"EVENT\",{" + content + "}]";
  expect_notice(no_id,
                "invalid: event is too large (message of " + std::to_string(no_id.size()) +
                    " bytes, max 1000)",
                limits);
  const std::string huge_req = "[\"REQ\",\"s\",{\"search\":\"" + std::string(2000, 'q') + "\"}]";
  expect_notice(
      huge_req,
      "invalid: message is too large (" + std::to_string(huge_req.size()) + " bytes, max 1000)",
      limits);
}

TEST_CASE("Event id: without the event's own readable id, a NOTICE", "[malformed]") {
  SECTION("garbage and frames that stop before the id") {
    expect_notice("xyz", kMalformed);
    expect_notice("[", kMalformed);
    expect_notice(R"(["EVENT")", kMalformed);
    expect_notice(R"(["EVENT",{)", kMalformed);
    expect_notice(R"(["EVENT",{"id")", kMalformed);
    expect_notice(R"(["EVENT",{"id":)", kMalformed);
  }
  SECTION("an id-like string in content, tags or a nested value only") {
    expect_notice(R"(["EVENT",{"content":"\"id\":\")" + kDecoy + R"(\"","kind":1e400}])", kNumber);
    expect_notice(R"(["EVENT",{"content":"a\",\"id\":\")" + kDecoy + R"(\"","kind":1e400}])",
                  kNumber);
    expect_notice(R"(["EVENT",{"tags":[["id",")" + kDecoy + R"("]],"kind":1e400}])", kNumber);
    expect_notice(R"(["EVENT",{"x":{"id":")" + kDecoy + R"("},"kind":1e400}])", kNumber);
    expect_notice(R"(["EVENT",{"x":[{"id":")" + kDecoy + R"("}],"kind":1e400}])", kNumber);
  }
  SECTION("an id outside the event object") {
    expect_notice(R"(["EVENT","x",{"id":")" + kDecoy + R"(","kind":1e400}])", kNumber);
    expect_notice(R"([{"id":")" + kDecoy + R"("},1e400])", kNumber);
    expect_notice(R"(["REQ",{"id":")" + kDecoy + R"(","kind":1e400}])", kNumber);
    expect_notice(R"(["EVENT",[{"id":")" + kDecoy + R"("}],1e400])", kNumber);
  }
  SECTION("brackets that do not match before the id: no guess") {
    expect_notice(R"(["EVENT",{"tags":[["t"}],"id":")" + kDecoy + R"("}])", kMalformed);
  }
  SECTION("an id that is not 64 hex digits, or not a string") {
    expect_notice("[\"EVENT\",{\"id\":\"" + id().substr(1) + "\",\"kind\":1e400}]", kNumber);
    expect_notice(R"(["EVENT",{"id":"g)" + kDecoy.substr(1) + R"(","kind":1e400}])", kNumber);
    expect_notice(R"(["EVENT",{"id":[")" + kDecoy + R"("],"kind":1e400}])", kNumber);
    expect_notice(R"(["EVENT",{"idx":")" + kDecoy + R"(","kind":1e400}])", kNumber);
    expect_notice(R"(["EVENT",{"id":"\u00e9)" + kDecoy.substr(1) + R"(","kind":1e400}])", kNumber);
  }
}
