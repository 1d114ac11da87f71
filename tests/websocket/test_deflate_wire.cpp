// permessage-deflate on the wire: the handshake answer, compressed messages both ways (whole,
// fragmented, with control frames in between), and the closes for bad data and bombs.
#include <catch2/catch.hpp>

#include "deflate_peer.hpp"
#include "relaycore/event.hpp"
#include "test_server_util.hpp"

namespace relaycore::websocket::test {
namespace {

constexpr std::string_view kOffer =
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
constexpr std::uint8_t kRsv1 = 4;  // FrameOptions::rsv holds RSV1..RSV3 as bits 2..0

std::unique_ptr<WsClient> open_deflate(ServerFixture& fx) {
  auto c = std::make_unique<WsClient>(fx.port());
  REQUIRE(c->connected());
  REQUIRE(c->handshake(kRfcKey, kOffer));
  return c;
}

// The text of the next data frame, inflated when RSV1 says it is compressed.
std::string read_text(WsClient& c, bool expect_compressed) {
  std::optional<ServerFrame> f = c.read_data_or_close();
  REQUIRE(f);
  REQUIRE(f->opcode == kOpText);
  CHECK(f->fin);
  CHECK(f->rsv == (expect_compressed ? kRsv1 : 0));
  if (f->rsv == 0) return f->payload;
  std::string text;
  REQUIRE(peer_inflate(f->payload, text));
  return text;
}

const std::string kLong =
    R"(["EVENT",{"content":"long enough to be compressed, long enough to be compressed"}])";

}  // namespace

TEST_CASE("deflate wire: an offer is answered in the handshake, and messages go compressed") {
  ServerFixture fx;
  auto c = open_deflate(fx);
  CHECK(c->last_head().find("\r\nSec-WebSocket-Extensions: permessage-deflate; "
                            "client_no_context_takeover\r\n") != std::string::npos);
  FrameOptions o;
  o.rsv = kRsv1;
  REQUIRE(c->send_frame(kOpText, peer_compress(kLong), o));
  CHECK(read_text(*c, true) == kLong);
  // Uncompressed messages still work both ways; short answers go out as they are.
  REQUIRE(c->send_text("short"));
  CHECK(read_text(*c, false) == "short");
  REQUIRE(c->send_text(kLong));
  CHECK(read_text(*c, true) == kLong);
}

TEST_CASE("deflate wire: no offer, or the server's switch off, means no extension") {
  {
    ServerFixture fx;
    auto c = fx.open();
    CHECK(c->last_head().find("Sec-WebSocket-Extensions") == std::string::npos);
    REQUIRE(c->send_text(kLong));
    CHECK(read_text(*c, false) == kLong);
  }
  ServerOptions options;
  options.permessage_deflate = false;
  ServerFixture fx(options);
  auto c = open_deflate(fx);
  CHECK(c->last_head().find("Sec-WebSocket-Extensions") == std::string::npos);
  REQUIRE(c->send_text(kLong));
  CHECK(read_text(*c, false) == kLong);
  // Without the extension RSV1 is a protocol error.
  FrameOptions o;
  o.rsv = kRsv1;
  REQUIRE(c->send_frame(kOpText, peer_compress(kLong), o));
  CHECK(c->read_close_code() == 1002);
}

TEST_CASE("deflate wire: a fragmented compressed message with pings in between") {
  ServerFixture fx;
  auto c = open_deflate(fx);
  const std::string wire = peer_compress(kLong);
  const std::size_t third = wire.size() / 3;
  FrameOptions first;
  first.fin = false;
  first.rsv = kRsv1;
  FrameOptions middle;
  middle.fin = false;
  REQUIRE(c->send_frame(kOpText, wire.substr(0, third), first));
  REQUIRE(c->send_frame(kOpPing, "p1"));
  REQUIRE(c->send_frame(kOpContinuation, wire.substr(third, third), middle));
  REQUIRE(c->send_frame(kOpPing, "p2"));
  REQUIRE(c->send_frame(kOpContinuation, wire.substr(2 * third)));
  // Pongs are never compressed; the latest unanswered ping may replace the first.
  std::optional<ServerFrame> f = c->read_frame();
  REQUIRE(f);
  while (f->opcode == kOpPong) {
    CHECK(f->rsv == 0);
    f = c->read_frame();
    REQUIRE(f);
  }
  REQUIRE(f->opcode == kOpText);
  CHECK(f->rsv == kRsv1);
  std::string text;
  REQUIRE(peer_inflate(f->payload, text));
  CHECK(text == kLong);
}

TEST_CASE("deflate wire: RSV1 on a continuation or a control frame is a protocol error") {
  ServerFixture fx;
  {
    auto c = open_deflate(fx);
    FrameOptions first;
    first.fin = false;
    FrameOptions cont;
    cont.rsv = kRsv1;
    REQUIRE(c->send_frame(kOpText, "abc", first));
    REQUIRE(c->send_frame(kOpContinuation, "def", cont));
    CHECK(c->read_close_code() == 1002);
  }
  auto c = open_deflate(fx);
  FrameOptions o;
  o.rsv = kRsv1;
  REQUIRE(c->send_frame(kOpPing, "x", o));
  CHECK(c->read_close_code() == 1002);
}

TEST_CASE("deflate wire: bad compressed data is closed with 1007") {
  ServerFixture fx;
  auto c = open_deflate(fx);
  FrameOptions o;
  o.rsv = kRsv1;
  REQUIRE(c->send_frame(kOpText, "\xff\xff\xff\xff not deflate", o));
  CHECK(c->read_close_code() == 1007);
  CHECK(c->wait_closed());
  // Compressed bytes that inflate to invalid UTF-8 are 1007 as well.
  auto d = open_deflate(fx);
  REQUIRE(d->send_frame(kOpText, peer_compress("\xc3\x28 not utf-8"), o));
  CHECK(d->read_close_code() == 1007);
}

TEST_CASE("deflate wire: a small frame inflating past the message limit is closed with 1009") {
  ServerOptions options;
  options.max_message_bytes = 64 * 1024;
  ServerFixture fx(options);
  auto c = open_deflate(fx);
  const std::string bomb = peer_compress(std::string(64u << 20, 'a'));
  REQUIRE(bomb.size() < options.max_message_bytes);
  FrameOptions o;
  o.rsv = kRsv1;
  REQUIRE(c->send_frame(kOpText, bomb, o));
  CHECK(c->read_close_code() == 1009);
  CHECK(fx.handler->messages.load() == 0);
  CHECK(fx.server->stats().oversize_closes == 1);
  fx.expect_still_serves();
}

// The server answers "burst" with kBurst messages sent back to back, as a REQ streams history.
constexpr int kBurst = 200;
std::string burst_message(int i) {
  return R"(["EVENT","sub",{"kind":1,"content":"note number )" + std::to_string(i) +
         R"( of a burst that shares most of its bytes with the others"}])";
}
void serve_bursts(ServerFixture& fx) {
  fx.handler->on_text = [](const std::shared_ptr<Connection>& connection, std::string_view text) {
    if (text != "burst") return;
    for (int i = 0; i < kBurst; ++i) connection->send(Frame(burst_message(i)));
  };
}

TEST_CASE("deflate wire: a burst of messages refers back to earlier ones") {
  ServerFixture fx;
  serve_bursts(fx);
  auto c = open_deflate(fx);
  REQUIRE(c->send_text("burst"));
  PeerInflater peer;
  std::size_t raw = 0, wire = 0;
  for (int i = 0; i < kBurst; ++i) {
    std::optional<ServerFrame> f = c->read_data_or_close();
    REQUIRE(f);
    REQUIRE(f->rsv == kRsv1);
    std::string text;
    REQUIRE(peer.inflate_message(f->payload, text));
    CHECK(text == burst_message(i));
    raw += text.size();
    wire += f->payload.size();
  }
  // Message by message each would take well over half; with context takeover a fraction.
  CHECK(wire * 4 < raw);
}

TEST_CASE("deflate wire: with server_no_context_takeover every message stands alone") {
  ServerFixture fx;
  serve_bursts(fx);
  auto c = std::make_unique<WsClient>(fx.port());
  REQUIRE(c->connected());
  REQUIRE(c->handshake(
      kRfcKey, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"));
  CHECK(c->last_head().find("server_no_context_takeover; client_no_context_takeover") !=
        std::string::npos);
  REQUIRE(c->send_text("burst"));
  for (int i = 0; i < kBurst; ++i) {
    std::optional<ServerFrame> f = c->read_data_or_close();
    REQUIRE(f);
    std::string text;
    REQUIRE(peer_inflate(f->payload, text));  // a fresh inflater for each
    CHECK(text == burst_message(i));
  }
}

TEST_CASE("deflate wire: an EVENT fanned out to idle subscribers is compressed once") {
  ServerFixture fx;
  const std::string json = R"({"id":")" + std::string(64, '1') + R"(","pubkey":")" +
                           std::string(64, '2') + R"(","created_at":1700000000,"kind":1,)" +
                           R"("tags":[],"content":"one note for every subscriber, compressed )" +
                           R"(once and sent to all of them","sig":")" + std::string(128, '3') +
                           R"("})";
  Result<EventPtr> event = parse_event(json);
  REQUIRE(event);
  // "fanout" from any client sends the event to every connection, each with its own sub id.
  fx.handler->on_text = [&](const std::shared_ptr<Connection>&, std::string_view text) {
    if (text != "fanout") return;
    std::vector<std::shared_ptr<Connection>> all;
    {
      std::lock_guard lock(fx.handler->mu);
      for (const auto& weak : fx.handler->connections) {
        if (auto c = weak.lock()) all.push_back(std::move(c));
      }
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
      all[i]->send(Frame(R"(["EVENT","sub)" + std::to_string(i) + R"(",)", *event));
    }
  };
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(open_deflate(fx));
  REQUIRE(clients[0]->send_text("fanout"));
  std::vector<std::string> bodies;
  for (auto& c : clients) {
    std::optional<ServerFrame> f = c->read_data_or_close();
    REQUIRE(f);
    REQUIRE(f->rsv == kRsv1);
    std::string text;
    REQUIRE(peer_inflate(f->payload, text));
    const std::string head = text.substr(0, text.find(',', 9) + 1);
    CHECK(text == head + json + "]");
    // The head travels stored (5 bytes of block header); the rest is the shared body.
    bodies.push_back(f->payload.substr(5 + head.size()));
  }
  CHECK(bodies[0] == bodies[1]);
  CHECK(bodies[1] == bodies[2]);
  CHECK(bodies[0].size() < json.size());
}

}  // namespace relaycore::websocket::test
