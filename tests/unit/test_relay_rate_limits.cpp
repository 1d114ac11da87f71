// The built-in rate limits as a client meets them: OK false for an EVENT, CLOSED for a REQ or
// COUNT, a NOTICE and a closed connection past the per-address cap; exempt clients untouched.
#include <catch2/catch.hpp>

#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "test_util.hpp"

using namespace relaycore;

namespace {

constexpr const char* kAddress = "203.0.113.7:5555";

struct LimitedRelay {
  std::unique_ptr<Relay> relay;

  explicit LimitedRelay(std::function<void(RateLimits&)> tweak) {
    Options o;
    o.storage = new_memory_storage();
    o.verify_threads = 1;
    // Buckets that do not refill during a test: only the burst counts.
    o.rate_limits.per_ip = {{0.001, 2}, {0.001, 2}, {0.001, 1}};
    tweak(o.rate_limits);
    relay = Relay::open(std::move(o)).value();
  }

  struct Client {
    std::shared_ptr<test::RecordingConnection> conn = std::make_shared<test::RecordingConnection>();
    std::shared_ptr<Session> session;
  };
  Client connect(const char* address = kAddress) {
    Client c;
    c.session = relay->open_session(c.conn, ClientInfo{address, {}});
    return c;
  }
};

using test::event_frame;

}  // namespace

TEST_CASE("EVENT, REQ and COUNT past their bucket are refused with rate-limited:",
          "[relay][rate-limit]") {
  LimitedRelay r([](RateLimits&) {});
  auto c = r.connect();
  for (int i = 0; i < 3; ++i) {
    c.session->on_message(
        event_frame(test::signed_event(test::alice(), 1, test::now(), std::to_string(i))));
  }
  REQUIRE(c.conn->wait_count("[\"OK\"", 3));
  CHECK(c.conn->count(R"(["OK")") == 3);
  const auto frames = c.conn->frames();
  auto refused = [&](std::string_view head) {
    return std::count_if(frames.begin(), frames.end(), [&](const std::string& f) {
      return f.rfind(head, 0) == 0 && f.find("rate-limited:") != std::string::npos;
    });
  };
  CHECK(refused(R"(["OK")") == 1);

  c.session->on_message(R"(["REQ","a",{}])");
  c.session->on_message(R"(["REQ","b",{}])");
  c.session->on_message(R"(["REQ","c",{}])");
  c.session->on_message(R"(["COUNT","n1",{}])");
  c.session->on_message(R"(["COUNT","n2",{}])");
  REQUIRE(c.conn->wait_count(R"(["EOSE")", 2));
  REQUIRE(c.conn->wait_count(R"(["COUNT")", 1));
  REQUIRE(c.conn->wait_count(R"(["CLOSED")", 2));
  const auto after = c.conn->frames();
  CHECK(std::count_if(after.begin(), after.end(), [](const std::string& f) {
          return f.rfind(R"(["CLOSED","c","rate-limited:)", 0) == 0 ||
                 f.rfind(R"(["CLOSED","n2","rate-limited:)", 0) == 0;
        }) == 2);
  const RelayStats st = r.relay->stats();
  CHECK(st.rate_limits.refused_event == 1);
  CHECK(st.rate_limits.refused_req == 1);
  CHECK(st.rate_limits.refused_count == 1);

  // Another address has buckets of its own.
  auto other = r.connect("198.51.100.1:1");
  other.session->on_message(R"(["REQ","x",{}])");
  REQUIRE(other.conn->wait_count(R"(["EOSE")", 1));
}

TEST_CASE("a connection past the per-address cap gets a NOTICE and is closed",
          "[relay][rate-limit]") {
  LimitedRelay r([](RateLimits& l) { l.max_connections_per_ip = 2; });
  auto a = r.connect();
  auto b = r.connect();
  auto c = r.connect();
  REQUIRE(c.conn->wait_closed());
  CHECK(c.conn->count("[\"NOTICE\",\"rate-limited:") == 1);
  CHECK_FALSE(a.conn->closed());
  CHECK_FALSE(b.conn->closed());
  CHECK(r.relay->stats().rate_limits.refused_connections == 1);
  // A closed connection gives its place back.
  a.session->on_close();
  auto d = r.connect();
  d.session->on_message(R"(["REQ","x",{}])");
  REQUIRE(d.conn->wait_count(R"(["EOSE")", 1));
  CHECK_FALSE(d.conn->closed());
}

TEST_CASE("a host's allow list exempts clients from every limit", "[relay][rate-limit]") {
  LimitedRelay r([](RateLimits& l) {
    l.max_connections_per_ip = 1;
    l.exempt = [](const ClientInfo& c) { return c.remote_address == kAddress; };
  });
  auto a = r.connect();
  auto b = r.connect();
  for (int i = 0; i < 5; ++i) {
    b.session->on_message(
        event_frame(test::signed_event(test::alice(), 1, test::now(), std::to_string(i))));
  }
  REQUIRE(b.conn->wait_count("[\"OK\"", 5));
  CHECK(b.conn->count("[\"OK\"") == 5);
  for (const std::string& f : b.conn->frames()) CHECK(f.find("rate-limited") == std::string::npos);
  CHECK_FALSE(a.conn->closed());
  CHECK_FALSE(b.conn->closed());
}
