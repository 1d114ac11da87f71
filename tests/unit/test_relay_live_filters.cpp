// Live delivery against since: the subscription index files filters by since, and a live event
// must still reach exactly the subscriptions whose since is at or before its created_at, in
// whatever order they were opened.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "../conformance/temp_dir.hpp"
#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "test_util.hpp"

using namespace relaycore;

namespace {

std::size_t events_for(const test::RecordingConnection& conn, const std::string& sub,
                       std::string_view content) {
  std::size_t n = 0;
  for (const std::string& f : conn.frames()) {
    if (f.rfind("[\"EVENT\",\"" + sub + "\",", 0) == 0 &&
        f.find("\"content\":\"" + std::string(content) + "\"") != std::string::npos) {
      ++n;
    }
  }
  return n;
}

}  // namespace

// Broken by an index that files or stops at the wrong since, or loses its order on removal.
TEST_CASE("Live events reach the subscriptions whose since is at or before created_at", "[relay]") {
  Options o;
  o.storage = new_memory_storage();
  auto relay = Relay::open(std::move(o)).value();
  auto conn = std::make_shared<test::RecordingConnection>();
  auto session = relay->open_session(conn, ClientInfo{"127.0.0.1", {}});

  const std::int64_t t = test::now() - 1000;
  const std::string at = std::to_string(t);
  // Opened out of since order, mixing since-only, kinds+since and no-since filters.
  const std::vector<std::pair<std::string, std::string>> subs = {
      {"late", R"({"since":)" + std::to_string(t + 100) + "}"},
      {"early", R"({"since":)" + std::to_string(t - 100) + "}"},
      {"all", "{}"},
      {"kind1_earliest", R"({"kinds":[1],"since":)" + std::to_string(t - 300) + "}"},
      {"exact", R"({"since":)" + at + "}"},
      {"kind1_late", R"({"kinds":[1],"since":)" + std::to_string(t + 1) + "}"},
  };
  for (const auto& [id, filter] : subs) REQUIRE(test::req_live(*session, *conn, id, filter));
  // Every open subscription matches it. It is committed after the events before it, so
  // dispatched after them, and all the subscriptions share one session whose frames go out in
  // order: once each open subscription has it, every copy of an earlier event is in. (One
  // subscription having it is not enough: the others may get it just after.)
  auto sentinel = [&](const std::string& content, const std::vector<std::string>& open) {
    EventPtr e = test::signed_event(test::alice(), 1, t + 500, content);
    REQUIRE(relay->submit(e).accepted);
    for (const std::string& id : open) REQUIRE(conn->wait_event(id, *e));
  };

  for (const auto& [created, kind, content] :
       std::vector<std::tuple<std::int64_t, std::uint16_t, std::string>>{
           {t - 200, 1, "old"}, {t, 1, "at"}, {t + 50, 7, "newer"}}) {
    REQUIRE(relay->submit(test::signed_event(test::alice(), kind, created, content)).accepted);
  }
  sentinel("sentinel 1", {"late", "early", "all", "kind1_earliest", "exact", "kind1_late"});

  CHECK(events_for(*conn, "all", "old") == 1);
  CHECK(events_for(*conn, "all", "at") == 1);
  CHECK(events_for(*conn, "all", "newer") == 1);
  CHECK(events_for(*conn, "early", "old") == 0);
  CHECK(events_for(*conn, "early", "at") == 1);
  CHECK(events_for(*conn, "early", "newer") == 1);
  CHECK(events_for(*conn, "exact", "old") == 0);
  CHECK(events_for(*conn, "exact", "at") == 1);  // since is inclusive
  CHECK(events_for(*conn, "exact", "newer") == 1);
  CHECK(events_for(*conn, "kind1_earliest", "old") == 1);
  CHECK(events_for(*conn, "kind1_earliest", "at") == 1);
  CHECK(events_for(*conn, "kind1_earliest", "newer") == 0);  // kind 7
  CHECK(test::RecordingConnection::count(conn->frames(), "[\"EVENT\",\"late\"") == 1);
  CHECK(test::RecordingConnection::count(conn->frames(), "[\"EVENT\",\"kind1_late\"") == 1);
  CHECK(events_for(*conn, "late", "sentinel 1") == 1);
  CHECK(events_for(*conn, "kind1_late", "sentinel 1") == 1);

  // Closing one subscription leaves the others filed in order.
  session->on_message(R"(["CLOSE","early"])");
  REQUIRE(relay->submit(test::signed_event(test::alice(), 1, t + 200, "latest")).accepted);
  sentinel("sentinel 2", {"late", "all", "kind1_earliest", "exact", "kind1_late"});
  CHECK(events_for(*conn, "late", "latest") == 1);
  CHECK(events_for(*conn, "kind1_late", "latest") == 1);
  CHECK(events_for(*conn, "exact", "latest") == 1);
  CHECK(events_for(*conn, "early", "latest") == 0);
  CHECK(events_for(*conn, "early", "sentinel 2") == 0);
}

// Broken by a search served in NIP-01 order, cut to its limit before ranking, resumed in chunks
// from a (created_at, id) position, sent twice when another filter of the REQ matches it too,
// or not delivered live by the same word rules.
TEST_CASE("A search REQ returns the best matches in rank order, then live matches", "[relay]") {
  for (const bool sqlite : {false, true}) {
    INFO((sqlite ? "sqlite" : "memory"));
    conformance::TempDir dir;
    Options o;
    if (sqlite) {
      o.sqlite.path = dir.file("events.db");
    } else {
      o.storage = new_memory_storage();
    }
    auto relay = Relay::open(std::move(o)).value();
    auto conn = std::make_shared<test::RecordingConnection>();
    auto session = relay->open_session(conn, ClientInfo{"127.0.0.1", {}});

    // 60 events of about 8 KiB each, more than one history chunk (256 KiB) holds. Event i says
    // "needle" (i % 3) + 1 times in as many words as the others, so rank and age disagree.
    const std::int64_t t = test::now() - 1000;
    std::vector<EventPtr> events;
    for (int i = 0; i < 60; ++i) {
      std::string content;
      for (int n = 0; n < 3; ++n) content += n <= i % 3 ? "needle " : "thread ";
      content += "filler" + std::to_string(i) + " " + std::string(8000, 'x');
      events.push_back(test::signed_event(test::alice(), 1, t + i, content));
    }
    for (const EventPtr& e : events) REQUIRE(relay->submit(e).accepted);
    EventPtr marker = test::signed_event(test::bob(), 1, t + 100, "marker");
    REQUIRE(relay->submit(marker).accepted);
    // Wait until all are stored: the marker, submitted last, is served by a plain REQ.
    REQUIRE(test::req_live(*session, *conn, "m",
                           R"({"authors":[")" + to_hex(test::bob().pubkey()) + "\"]}"));
    REQUIRE(conn->wait_event("m", *marker));

    // The best 25: the 20 with three needles, newest first, then the newest 5 with two. A
    // second filter matches one of them (the newest event) and must not make it come twice.
    const std::string at_59 = std::to_string(t + 59);
    const std::string second = R"({"since":)" + at_59 + R"(,"until":)" + at_59 + "}";
    REQUIRE(test::req_live(*session, *conn, "s", "{\"search\":\"NEEDLE\",\"limit\":25}," + second));
    std::vector<std::string> expected;
    for (int i = 59; i >= 0 && expected.size() < 20; --i) {
      if (i % 3 == 2) expected.push_back(test::RecordingConnection::event_frame("s", *events[i]));
    }
    for (int i = 59; i >= 0 && expected.size() < 25; --i) {
      if (i % 3 == 1) expected.push_back(test::RecordingConnection::event_frame("s", *events[i]));
    }
    std::vector<std::string> got;
    for (const std::string& f : conn->frames()) {
      if (f.rfind("[\"EVENT\",\"s\",", 0) == 0) got.push_back(f);
    }
    // The newest event also matches the second filter; whichever stream sends it, it comes
    // once, and the search's order is kept.
    CHECK(got == expected);
    CHECK(conn->count("[\"EOSE\",\"s\"]") == 1);

    // Live: matched by the same words, case folded; an event without the word is not sent.
    EventPtr live = test::signed_event(test::bob(), 1, t + 200, "a Needle, at last");
    EventPtr miss = test::signed_event(test::bob(), 7, t + 201, "needles");
    REQUIRE(relay->submit(miss).accepted);
    REQUIRE(relay->submit(live).accepted);
    REQUIRE(conn->wait_event("s", *live));
    CHECK(conn->count(test::RecordingConnection::event_frame("s", *miss)) == 0);
  }
}
