// Oversize messages against a real Relay behind the server: one over relaycore's message limit
// but within the transport's hard cap is answered (OK false for an EVENT, NOTICE otherwise) and
// the connection stays usable; one over the hard cap is closed with 1009.
#include <catch2/catch.hpp>

#include "../unit/test_util.hpp"
#include "relaycore/message.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"
#include "test_server_util.hpp"

namespace relaycore::websocket::test {
namespace {

class RelayHandler final : public Handler {
 public:
  explicit RelayHandler(Relay& relay) : relay_(relay) {}
  std::shared_ptr<Session> on_open(std::shared_ptr<Connection> connection,
                                   ClientInfo client) override {
    return relay_.open_session(std::move(connection), std::move(client));
  }
  std::optional<HttpResponse> on_http(const HttpRequest&) override { return std::nullopt; }

 private:
  Relay& relay_;
};

struct RelayFixture {
  explicit RelayFixture(ServerOptions options = {}) {
    Options o;
    o.storage = new_memory_storage();
    o.verify_threads = 1;
    o.reader_threads = 1;
    relay = Relay::open(std::move(o)).value();
    options.port = 0;
    Result<std::unique_ptr<Server>> started =
        Server::start(options, std::make_shared<RelayHandler>(*relay));
    if (!started) FAIL("server did not start: " << started.error().message());
    server = std::move(started).value();
  }
  ~RelayFixture() {
    server->stop();
    CHECK(relay->shutdown().is_ok());
  }

  std::unique_ptr<WsClient> open() {
    auto c = std::make_unique<WsClient>(server->port());
    REQUIRE(c->connected());
    REQUIRE(c->handshake());
    return c;
  }

  std::unique_ptr<Relay> relay;
  std::unique_ptr<Server> server;
};

// The next text message, or "" when none came.
std::string next_text(WsClient& c) {
  std::optional<ServerFrame> f = c.read_data_or_close();
  if (!f || f->opcode != kOpText) return "";
  return f->payload;
}

// An EVENT frame of exactly `size` bytes for `event`, padded with content: not a valid event,
// but with a readable id, as a client that overshot the limit would send it.
std::string event_frame_of(const Event& event, std::size_t size) {
  const std::string head =
      "[\"EVENT\",{\"id\":\"" + std::string(event.id_hex()) + "\",\"kind\":1,\"content\":\"";
  const std::string tail = "\"}]";
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

std::string too_large(const std::string& what, std::size_t size) {
  return "invalid: " + what + " is too large (" + (what == "event" ? "message of " : "") +
         std::to_string(size) + " bytes, max " + std::to_string(Limits().max_message_bytes) + ")";
}

// The connection still works: a REQ is answered through to EOSE, and an event published on it
// is stored and read back.
void expect_still_answers(WsClient& c) {
  REQUIRE(c.send_text(R"(["REQ","after",{"kinds":[1]}])"));
  CHECK(next_text(c) == eose_message("after"));
  EventPtr e = relaycore::test::signed_event(relaycore::test::alice(), 1, relaycore::test::now(),
                                             "small enough");
  REQUIRE(c.send_text("[\"EVENT\"," + std::string(e->json()) + "]"));
  // The live subscription may deliver the event before or after its OK.
  std::string first = next_text(c);
  std::string second = next_text(c);
  if (first.rfind("[\"OK\"", 0) != 0) std::swap(first, second);
  CHECK(first == ok_message(e->id_hex(), true, ""));
  CHECK(second == event_message("after", *e));
}

}  // namespace

TEST_CASE("a 200 KiB EVENT gets OK false and the connection stays open") {
  RelayFixture fx;
  auto c = fx.open();
  EventPtr e = relaycore::test::signed_event(relaycore::test::alice(), 1, 1700000000, "x");
  const std::string frame = event_frame_of(*e, 200 * 1024);
  REQUIRE(c->send_text(frame));
  CHECK(next_text(*c) == ok_message(e->id_hex(), false, too_large("event", frame.size())));
  expect_still_answers(*c);
  CHECK(fx.server->stats().oversize_closes == 0);
}

TEST_CASE("an oversize EVENT in fragments, up to exactly the hard cap, is answered too") {
  RelayFixture fx;
  auto c = fx.open();
  EventPtr e = relaycore::test::signed_event(relaycore::test::alice(), 1, 1700000000, "x");
  const std::size_t cap = ServerOptions().max_message_bytes;
  const std::string frame = event_frame_of(*e, cap);
  const std::size_t chunk = 64 * 1024;
  for (std::size_t at = 0; at < frame.size(); at += chunk) {
    const bool first = at == 0;
    const bool last = at + chunk >= frame.size();
    FrameOptions o;
    o.fin = last;
    REQUIRE(c->send_frame(first ? kOpText : kOpContinuation, frame.substr(at, chunk), o));
  }
  CHECK(next_text(*c) == ok_message(e->id_hex(), false, too_large("event", cap)));
  expect_still_answers(*c);
}

TEST_CASE("a huge REQ under the hard cap gets a NOTICE and the connection stays open") {
  RelayFixture fx;
  auto c = fx.open();
  const std::string frame =
      "[\"REQ\",\"big\",{\"search\":\"" + std::string(300 * 1024, 'q') + "\"}]";
  REQUIRE(c->send_text(frame));
  CHECK(next_text(*c) == notice_message(too_large("message", frame.size())));
  expect_still_answers(*c);
}

TEST_CASE("a message over the hard cap is closed with 1009, its payload unread") {
  RelayFixture fx;
  auto c = fx.open();
  EventPtr e = relaycore::test::signed_event(relaycore::test::alice(), 1, 1700000000, "x");
  const std::string frame = event_frame_of(*e, ServerOptions().max_message_bytes + 1);
  // The whole frame is written; the server closes once it has read the header.
  c->send_text(frame);
  CHECK(c->read_close_code() == 1009);
  CHECK(c->wait_closed());
  CHECK(fx.server->stats().oversize_closes == 1);
  auto again = fx.open();
  expect_still_answers(*again);
}

TEST_CASE("the hard cap is the server's max_message_bytes") {
  ServerOptions options;
  options.max_message_bytes = 256 * 1024;
  RelayFixture fx(options);
  auto c = fx.open();
  EventPtr e = relaycore::test::signed_event(relaycore::test::alice(), 1, 1700000000, "x");
  const std::string answered = event_frame_of(*e, 256 * 1024);
  REQUIRE(c->send_text(answered));
  CHECK(next_text(*c) == ok_message(e->id_hex(), false, too_large("event", answered.size())));
  FrameOptions o;
  o.announced = 256 * 1024 + 1;  // the header alone is refused
  REQUIRE(c->send_frame(kOpText, "", o));
  CHECK(c->read_close_code() == 1009);
}

}  // namespace relaycore::websocket::test
