#include <catch2/catch.hpp>

#include "relaycore/message.hpp"
#include "test_util.hpp"

using namespace relaycore;

TEST_CASE("Client messages parse into typed structs", "[message]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1700000000, "hi");

  auto event = parse_client_message("[\"EVENT\"," + std::string(ev->json()) + "]");
  REQUIRE(event.is_ok());
  REQUIRE(std::holds_alternative<EventMessage>(*event));
  CHECK(std::get<EventMessage>(*event).event->json() == ev->json());

  auto req = parse_client_message(R"(["REQ","sub1",{"kinds":[1]},{"limit":5}])");
  REQUIRE(req.is_ok());
  const ReqMessage& r = std::get<ReqMessage>(*req);
  CHECK(r.sub_id == "sub1");
  REQUIRE(r.filters.size() == 2);
  CHECK(*r.filters[1].limit == 5);

  auto count = parse_client_message(R"(["COUNT","c",{"authors":[]}])");
  REQUIRE(count.is_ok());
  CHECK(std::get<CountMessage>(*count).sub_id == "c");

  auto close = parse_client_message(R"(["CLOSE","sub1"])");
  REQUIRE(close.is_ok());
  CHECK(std::get<CloseMessage>(*close).sub_id == "sub1");

  EventPtr auth_ev = test::signed_event(test::alice(), 22242, 1700000000, "",
                                        {{"relay", "ws://x"}, {"challenge", "c"}});
  auto auth = parse_client_message("[\"AUTH\"," + std::string(auth_ev->json()) + "]");
  REQUIRE(auth.is_ok());
  CHECK(std::get<AuthMessage>(*auth).event->kind() == 22242);
}

TEST_CASE("Subscription ids are 1 to 64 characters", "[message]") {
  std::string max(64, 's');
  CHECK(parse_client_message("[\"REQ\",\"" + max + "\",{}]").is_ok());
  // 64 two-byte characters are 64 characters.
  std::string wide;
  for (int i = 0; i < 64; ++i) wide += "\xc3\xa9";
  CHECK(parse_client_message("[\"CLOSE\",\"" + wide + "\"]").is_ok());
  auto long_id = parse_client_message("[\"REQ\",\"" + max + "s\",{}]");
  REQUIRE_FALSE(long_id.is_ok());
  CHECK(long_id.error().status.message() ==
        "invalid: subscription id is too long (max 64 characters)");
}

TEST_CASE("Relay message builders", "[message]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1700000000, "x");
  std::string id(ev->id_hex());
  CHECK(ok_message(id, true, "") == "[\"OK\",\"" + id + "\",true,\"\"]");
  CHECK(ok_message(id, false, "invalid: bad \"sig\"") ==
        "[\"OK\",\"" + id + "\",false,\"invalid: bad \\\"sig\\\"\"]");
  CHECK(event_message("s", *ev) == "[\"EVENT\",\"s\"," + std::string(ev->json()) + "]");
  CHECK(eose_message("s\n") == "[\"EOSE\",\"s\\n\"]");
  CHECK(closed_message("s", "error: shutting down") ==
        "[\"CLOSED\",\"s\",\"error: shutting down\"]");
  CHECK(notice_message("hello") == "[\"NOTICE\",\"hello\"]");
  CHECK(count_message("q", 42) == "[\"COUNT\",\"q\",{\"count\":42}]");
  CHECK(auth_challenge_message("abc") == "[\"AUTH\",\"abc\"]");
}

TEST_CASE("Rejected frames are answered the NIP-01 way", "[message]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1700000000, "x");
  std::string bad_kind(ev->json());
  bad_kind.replace(bad_kind.find("\"kind\":1"), 8, "\"kind\":-1");
  auto e = parse_client_message("[\"EVENT\"," + bad_kind + "]");
  REQUIRE_FALSE(e.is_ok());
  // The id was readable, so the answer is OK false for it.
  CHECK(error_reply(e.error()) == "[\"OK\",\"" + std::string(ev->id_hex()) +
                                      "\",false,\"invalid: kind must be between 0 and 65535\"]");

  auto r = parse_client_message(R"(["REQ","s1",{"kinds":"1"}])");
  REQUIRE_FALSE(r.is_ok());
  CHECK(error_reply(r.error()) ==
        R"(["CLOSED","s1","invalid: filter \"kinds\" must be an array, not string"])");

  auto n = parse_client_message(R"(["HELLO"])");
  REQUIRE_FALSE(n.is_ok());
  CHECK(error_reply(n.error()) == R"(["NOTICE","invalid: unknown message type \"HELLO\""])");
}

TEST_CASE("Client builders give frames the relay's parser reads back", "[message]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1700000000, "hi \"there\"");
  auto event = parse_client_message(client_event_message(*ev));
  REQUIRE(event.is_ok());
  CHECK(std::get<EventMessage>(*event).event->json() == ev->json());

  Filter f = parse_filter(R"({"kinds":[1,7],"since":10,"until":20,"limit":3})").value();
  auto req = parse_client_message(req_message("s\"1", {f, Filter()}));
  REQUIRE(req.is_ok());
  const ReqMessage& r = std::get<ReqMessage>(*req);
  CHECK(r.sub_id == "s\"1");
  REQUIRE(r.filters.size() == 2);
  CHECK(r.filters[0].to_json() == f.to_json());

  auto close = parse_client_message(close_message("s1"));
  REQUIRE(close.is_ok());
  CHECK(std::get<CloseMessage>(*close).sub_id == "s1");

  auto count = parse_client_message(count_request_message("c1", {f}));
  REQUIRE(count.is_ok());
  CHECK(std::get<CountMessage>(*count).sub_id == "c1");
  REQUIRE(std::get<CountMessage>(*count).filters.size() == 1);
  CHECK(std::get<CountMessage>(*count).filters[0].to_json() == f.to_json());

  const std::string binary("\x61\x00\xff", 3);
  auto open = parse_client_message(neg_open_message("n1", f, binary));
  REQUIRE(open.is_ok());
  CHECK(std::get<NegOpenMessage>(*open).message == binary);
  CHECK(std::get<NegOpenMessage>(*open).filter.to_json() == f.to_json());
  auto neg_close = parse_client_message(neg_close_message("n1"));
  REQUIRE(neg_close.is_ok());
  CHECK(std::get<NegCloseMessage>(*neg_close).sub_id == "n1");
}

TEST_CASE("Relay frames parse into typed structs", "[message]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1700000000, "hi");
  auto event = parse_relay_message(event_message("sub", *ev));
  REQUIRE(event.is_ok());
  CHECK(std::get<SubEventMessage>(*event).sub_id == "sub");
  CHECK(std::get<SubEventMessage>(*event).event->json() == ev->json());

  auto ok = parse_relay_message(ok_message(ev->id_hex(), false, "blocked: no"));
  REQUIRE(ok.is_ok());
  CHECK(std::get<OkMessage>(*ok).event_id == ev->id_hex());
  CHECK_FALSE(std::get<OkMessage>(*ok).accepted);
  CHECK(std::get<OkMessage>(*ok).message == "blocked: no");

  CHECK(std::get<EoseMessage>(*parse_relay_message(eose_message("s"))).sub_id == "s");
  auto closed = parse_relay_message(closed_message("s", "error: x"));
  REQUIRE(closed.is_ok());
  CHECK(std::get<ClosedMessage>(*closed).message == "error: x");
  CHECK(std::get<NoticeMessage>(*parse_relay_message(notice_message("n"))).message == "n");
  auto count = parse_relay_message(count_message("c", 12345678901ull));
  REQUIRE(count.is_ok());
  CHECK(std::get<CountResultMessage>(*count).sub_id == "c");
  CHECK(std::get<CountResultMessage>(*count).count == 12345678901ull);
  CHECK(
      std::get<AuthChallengeMessage>(*parse_relay_message(auth_challenge_message("c"))).challenge ==
      "c");
  const std::string binary("\x61\x10", 2);
  auto neg = parse_relay_message(neg_msg_message("n", binary));
  REQUIRE(neg.is_ok());
  CHECK(std::get<NegMsgMessage>(*neg).message == binary);
  auto neg_err = parse_relay_message(neg_err_message("n", "blocked: too many"));
  REQUIRE(neg_err.is_ok());
  CHECK(std::get<NegErrMessage>(*neg_err).reason == "blocked: too many");

  for (const char* bad :
       {"{}", "[]", "[1]", R"(["EVENT","s"])", R"(["EVENT","s",{"id":1}])",
        R"(["OK","x","yes","m"])", R"(["NEG-MSG","n","6"])", R"(["NEG-MSG","n","zz"])",
        R"(["WHAT"])", R"(["COUNT","c",{"n":1}])", "[\"EOSE\""}) {
    INFO(bad);
    auto parsed = parse_relay_message(bad);
    REQUIRE_FALSE(parsed.is_ok());
    CHECK(parsed.error().message().rfind("invalid:", 0) == 0);
  }
}
