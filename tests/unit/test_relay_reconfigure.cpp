// Relay::reconfigure on a running relay: the NIP-11 document, limits, policies and rate limits
// change for sessions that are already open; a bad change changes nothing.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "rate_limit_test_util.hpp"
#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "test_util.hpp"

using namespace relaycore;

namespace {

// Refuses every event, saying so.
class RefuseAll final : public EventPolicy {
 public:
  PolicyDecision check(const EventPtr&, const ClientInfo&) override {
    return PolicyDecision::reject(Status::blocked("closed for the night"));
  }
};

using test::event_frame;

}  // namespace

TEST_CASE("Relay::reconfigure changes NIP-11, limits and policies for open sessions",
          "[relay][reconfigure]") {
  Options o;
  o.storage = new_memory_storage();
  o.verify_threads = 1;
  o.limits.max_subscriptions = 1;
  Options live = o;  // what the host keeps and changes
  std::unique_ptr<Relay> relay = Relay::open(std::move(o)).value();
  CHECK(relay->info_document().find(R"("name":"relaycore")") != std::string::npos);

  auto conn = std::make_shared<test::RecordingConnection>();
  std::shared_ptr<Session> session = relay->open_session(conn, ClientInfo{"203.0.113.7:1", {}});
  session->on_message(R"(["REQ","a",{"kinds":[1]}])");
  session->on_message(R"(["REQ","b",{"kinds":[1]}])");
  REQUIRE(conn->wait_count(R"(["CLOSED","b")", 1));

  live.info.name = "renamed";
  live.info.icon = "https://example.com/icon.png";
  live.limits.max_subscriptions = 2;
  live.event_policy = std::make_shared<RefuseAll>();
  REQUIRE(relay->reconfigure(live).is_ok());
  CHECK(relay->info_document().find(R"("name":"renamed")") != std::string::npos);
  CHECK(relay->info_document().find(R"("icon":"https://example.com/icon.png")") !=
        std::string::npos);
  CHECK(relay->info_document().find(R"("restricted_writes":true)") != std::string::npos);

  // The same session: a second subscription now fits, and the new policy refuses events.
  session->on_message(R"(["REQ","c",{"kinds":[1]}])");
  REQUIRE(conn->wait_count(R"(["EOSE","c")", 1));
  CHECK(conn->count(R"(["CLOSED","c")") == 0);
  session->on_message(event_frame(test::signed_event(test::alice(), 1, test::now(), "hi")));
  REQUIRE(conn->wait_count(R"(["OK")", 1));
  CHECK(conn->frames().back().find("blocked: closed for the night") != std::string::npos);
  CHECK_FALSE(conn->closed());

  // A bad rate is refused, and nothing changes.
  live.info.name = "not applied";
  live.rate_limits.per_ip.event.per_second = -1;
  Status bad = relay->reconfigure(live);
  CHECK(bad.code() == StatusCode::kInvalid);
  CHECK(relay->info_document().find(R"("name":"renamed")") != std::string::npos);
}

TEST_CASE("Rate limits: reconfigure keeps buckets and open connections", "[rate_limit]") {
  using namespace relaycore::test;
  FakeClock clock;
  RateLimits l = no_limits();
  l.per_ip.event = {0.001, 1};
  l.max_connections_per_ip = 1;
  auto rl = limiter(l, clock);
  const ClientInfo c = client("203.0.113.7:5555");
  CHECK(allowed(*rl, Verb::kEvent, c, 3) == 1);
  Result<ConnectionSlot> first = rl->open_connection(c);
  REQUIRE(first.is_ok());

  // A larger burst at the same rate: the bucket already spent one token of it.
  l.per_ip.event = {0.001, 3};
  REQUIRE(rl->reconfigure(l).is_ok());
  CHECK(allowed(*rl, Verb::kEvent, c, 5) == 2);
  // The connection opened before still counts against the cap.
  CHECK_FALSE(rl->open_connection(c).is_ok());
  l.max_connections_per_ip = 2;
  REQUIRE(rl->reconfigure(l).is_ok());
  CHECK(rl->open_connection(c).is_ok());

  // Exempt from now on; and a bad address changes nothing.
  l.exempt_ips = {"203.0.113.0/24"};
  REQUIRE(rl->reconfigure(l).is_ok());
  CHECK(allowed(*rl, Verb::kEvent, c, 5) == 5);
  l.exempt_ips = {"not an address"};
  CHECK(rl->reconfigure(l).code() == StatusCode::kInvalid);
  CHECK(allowed(*rl, Verb::kEvent, c, 5) == 5);
}
