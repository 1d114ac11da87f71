// Live delivery against since: the subscription index files filters by since, and a live event
// must still reach exactly the subscriptions whose since is at or before its created_at, in
// whatever order they were opened.
#include <catch2/catch.hpp>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

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
  // Every subscription matches it. It is committed after the events before it, so dispatched
  // after them, and all the subscriptions share one session whose frames go out in order: once
  // "all" has it, every copy of an earlier event is in.
  auto sentinel = [&](const std::string& content) {
    EventPtr e = test::signed_event(test::alice(), 1, t + 500, content);
    REQUIRE(relay->submit(e).accepted);
    REQUIRE(conn->wait_event("all", *e));
  };

  for (const auto& [created, kind, content] :
       std::vector<std::tuple<std::int64_t, std::uint16_t, std::string>>{
           {t - 200, 1, "old"}, {t, 1, "at"}, {t + 50, 7, "newer"}}) {
    REQUIRE(relay->submit(test::signed_event(test::alice(), kind, created, content)).accepted);
  }
  sentinel("sentinel 1");

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
  sentinel("sentinel 2");
  CHECK(events_for(*conn, "late", "latest") == 1);
  CHECK(events_for(*conn, "kind1_late", "latest") == 1);
  CHECK(events_for(*conn, "exact", "latest") == 1);
  CHECK(events_for(*conn, "early", "latest") == 0);
  CHECK(events_for(*conn, "early", "sentinel 2") == 0);
}
