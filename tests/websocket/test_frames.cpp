// Framing: echo at each length encoding, fragmentation, control frames, the close handshake,
// and every malformed frame the server must refuse (after which a new connection still works).
#include <catch2/catch.hpp>

#include "test_server_util.hpp"

namespace relaycore::websocket::test {
namespace {

// Sends `bytes` on an open connection and expects a close frame with `code`, then EOF.
void expect_close(ServerFixture& fx, const std::string& bytes, std::uint16_t code) {
  const int closes = fx.handler->closes.load();
  auto c = fx.open();
  REQUIRE(c->send_raw(bytes));
  CHECK(c->read_close_code() == code);
  CHECK(c->wait_closed());
  c.reset();
  CHECK(fx.handler->wait_until([&] { return fx.handler->closes.load() == closes + 1; }));
  fx.expect_still_serves();
}

std::string echo(WsClient& c, const std::string& text, std::size_t* header_size = nullptr) {
  REQUIRE(c.send_text(text));
  std::optional<ServerFrame> f = c.read_frame();
  REQUIRE(f);
  CHECK(f->fin);
  CHECK(f->opcode == kOpText);
  CHECK_FALSE(f->masked);
  CHECK(f->rsv == 0);
  if (header_size) *header_size = f->header_size;
  return f->payload;
}

}  // namespace

TEST_CASE("text echo uses the 7-bit, 16-bit and 64-bit length encodings") {
  ServerFixture fx;
  auto c = fx.open();
  std::size_t header = 0;
  CHECK(echo(*c, "", &header).empty());
  CHECK(header == 2);
  CHECK(echo(*c, std::string(125, 'a'), &header) == std::string(125, 'a'));
  CHECK(header == 2);
  CHECK(echo(*c, std::string(126, 'b'), &header) == std::string(126, 'b'));
  CHECK(header == 4);
  CHECK(echo(*c, std::string(65535, 'c'), &header) == std::string(65535, 'c'));
  CHECK(header == 4);
  std::string big(70000, 'd');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  CHECK(echo(*c, big, &header) == big);
  CHECK(header == 10);
  CHECK(echo(*c, "h\xC3\xA9llo \xF0\x9F\x98\x80") == "h\xC3\xA9llo \xF0\x9F\x98\x80");
}

TEST_CASE("a client frame with a 64-bit length encoding of a small payload is accepted") {
  ServerFixture fx;
  auto c = fx.open();
  FrameOptions o;
  o.long_length = true;
  REQUIRE(c->send_frame(kOpText, "long", o));
  std::optional<ServerFrame> f = c->read_frame();
  REQUIRE(f);
  CHECK(f->payload == "long");
}

TEST_CASE("a fragmented message with an interleaved ping is reassembled") {
  ServerFixture fx;
  auto c = fx.open();
  FrameOptions more;
  more.fin = false;
  REQUIRE(c->send_frame(kOpText, "frag", more));
  REQUIRE(c->send_frame(kOpPing, "in between"));
  REQUIRE(c->send_frame(kOpContinuation, "men", more));
  REQUIRE(c->send_frame(kOpContinuation, ""));
  std::optional<ServerFrame> pong = c->read_frame();
  REQUIRE(pong);
  CHECK(pong->opcode == kOpPong);
  CHECK(pong->payload == "in between");
  std::optional<ServerFrame> f = c->read_frame();
  REQUIRE(f);
  CHECK(f->payload == "fragmen");
  CHECK(fx.handler->messages.load() == 1);
  // A UTF-8 sequence split across fragments is fine: only the whole message is checked.
  REQUIRE(c->send_frame(kOpText, "\xF0\x9F", more));
  REQUIRE(c->send_frame(kOpContinuation, "\x98\x80"));
  f = c->read_frame();
  REQUIRE(f);
  CHECK(f->payload == "\xF0\x9F\x98\x80");
}

TEST_CASE("an unmasked client frame closes with 1002") {
  ServerFixture fx;
  FrameOptions o;
  o.masked = false;
  expect_close(fx, WsClient::frame_bytes(kOpText, "hello", o), 1002);
  CHECK(fx.server->stats().protocol_errors == 1);
}

TEST_CASE("reserved bits without an extension close with 1002") {
  ServerFixture fx;
  FrameOptions o;
  o.rsv = 4;  // RSV1, what permessage-deflate would use
  expect_close(fx, WsClient::frame_bytes(kOpText, "hello", o), 1002);
}

TEST_CASE("unknown opcodes close with 1002") {
  ServerFixture fx;
  expect_close(fx, WsClient::frame_bytes(0x3, "x"), 1002);
  expect_close(fx, WsClient::frame_bytes(0xB, "x"), 1002);
}

TEST_CASE("a fragmented control frame closes with 1002") {
  ServerFixture fx;
  FrameOptions o;
  o.fin = false;
  expect_close(fx, WsClient::frame_bytes(kOpPing, "x", o), 1002);
}

TEST_CASE("a control frame over 125 bytes closes with 1002") {
  ServerFixture fx;
  expect_close(fx, WsClient::frame_bytes(kOpPing, std::string(126, 'p')), 1002);
}

TEST_CASE("a continuation without a started message closes with 1002") {
  ServerFixture fx;
  expect_close(fx, WsClient::frame_bytes(kOpContinuation, "orphan"), 1002);
}

TEST_CASE("a new data frame inside a fragmented message closes with 1002") {
  ServerFixture fx;
  FrameOptions more;
  more.fin = false;
  expect_close(
      fx, WsClient::frame_bytes(kOpText, "start", more) + WsClient::frame_bytes(kOpText, "again"),
      1002);
}

TEST_CASE("a 64-bit length with the top bit set closes with 1002") {
  ServerFixture fx;
  FrameOptions o;
  o.announced = 0x8000000000000001ULL;
  expect_close(fx, WsClient::frame_bytes(kOpText, "", o), 1002);
}

TEST_CASE("an oversize announced length closes with 1009 before the body is sent") {
  ServerOptions opts;
  opts.max_message_bytes = 1000;
  ServerFixture fx(opts);
  auto c = fx.open();
  FrameOptions o;
  o.announced = 1ULL << 40;  // a terabyte that never comes
  REQUIRE(c->send_frame(kOpText, "", o));
  CHECK(c->read_close_code(2000ms) == 1009);
  CHECK(c->wait_closed());
  CHECK(fx.server->stats().oversize_closes == 1);
  c.reset();
  fx.expect_still_serves();
}

TEST_CASE("fragments adding up past max_message_bytes close with 1009") {
  ServerOptions opts;
  opts.max_message_bytes = 1000;
  ServerFixture fx(opts);
  auto c = fx.open();
  CHECK(echo(*c, std::string(1000, 'x')) == std::string(1000, 'x'));  // exactly the limit
  FrameOptions more;
  more.fin = false;
  REQUIRE(c->send_frame(kOpText, std::string(600, 'a'), more));
  REQUIRE(c->send_frame(kOpContinuation, std::string(401, 'b')));
  CHECK(c->read_close_code() == 1009);
  CHECK(c->wait_closed());
  c.reset();
  fx.expect_still_serves();
}

TEST_CASE("invalid UTF-8 in a text message closes with 1007") {
  ServerFixture fx;
  expect_close(fx, WsClient::frame_bytes(kOpText, "bad \xC3\x28 utf8"), 1007);
  expect_close(fx, WsClient::frame_bytes(kOpText, "\xED\xA0\x80"), 1007);  // a surrogate
  CHECK(fx.handler->messages.load() == 2);  // only the two expect_still_serves echoes
}

TEST_CASE("a binary message closes with 1003") {
  ServerFixture fx;
  expect_close(fx, WsClient::frame_bytes(kOpBinary, "\x01\x02"), 1003);
}

TEST_CASE("a close with 1000 is echoed with 1000 and the connection ends") {
  ServerFixture fx;
  auto c = fx.open();
  REQUIRE(c->send_close(1000, "bye"));
  std::optional<ServerFrame> f = c->read_frame();
  REQUIRE(f);
  CHECK(f->opcode == kOpClose);
  CHECK(f->close_code() == 1000);
  CHECK(c->wait_closed());
  CHECK(fx.handler->wait_until([&] { return fx.handler->closes.load() == 1; }));
}

TEST_CASE("a close without a code is answered with 1000 and other valid codes are echoed") {
  ServerFixture fx;
  auto c = fx.open();
  REQUIRE(c->send_frame(kOpClose, ""));
  CHECK(c->read_close_code() == 1000);
  CHECK(c->wait_closed());
  auto d = fx.open();
  REQUIRE(d->send_close(4001, "app code"));
  CHECK(d->read_close_code() == 4001);
  CHECK(d->wait_closed());
}

TEST_CASE("a close with an invalid code closes with 1002") {
  ServerFixture fx;
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 2000, 5000}) {
    CAPTURE(code);
    std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    expect_close(fx, WsClient::frame_bytes(kOpClose, p), 1002);
  }
}

TEST_CASE("a close payload of one byte closes with 1002") {
  ServerFixture fx;
  expect_close(fx, WsClient::frame_bytes(kOpClose, "\x03"), 1002);
}

TEST_CASE("a close reason that is not UTF-8 closes with 1007") {
  ServerFixture fx;
  expect_close(fx, WsClient::frame_bytes(kOpClose, std::string("\x03\xE8\xFF\xFE", 4)), 1007);
}

TEST_CASE("a ping is answered with a pong carrying the same payload and pongs are ignored") {
  ServerFixture fx;
  auto c = fx.open();
  REQUIRE(c->send_frame(kOpPong, "unsolicited"));
  REQUIRE(c->send_frame(kOpPing, "payload-123"));
  std::optional<ServerFrame> f = c->read_frame();
  REQUIRE(f);
  CHECK(f->opcode == kOpPong);
  CHECK(f->payload == "payload-123");
  REQUIRE(c->send_frame(kOpPing, std::string(125, 'z')));
  f = c->read_frame();
  REQUIRE(f);
  CHECK(f->payload == std::string(125, 'z'));
  CHECK(echo(*c, "after pings") == "after pings");
  CHECK(fx.handler->messages.load() == 1);
}

TEST_CASE("a frame split into single bytes is parsed") {
  ServerFixture fx;
  auto c = fx.open();
  const std::string bytes = WsClient::frame_bytes(kOpText, std::string(300, 's'));
  for (char b : bytes) {
    REQUIRE(c->send_raw(std::string(1, b)));
  }
  std::optional<ServerFrame> f = c->read_frame();
  REQUIRE(f);
  CHECK(f->payload == std::string(300, 's'));
}

TEST_CASE("messages arriving together are all handled, in order, before a close after them") {
  // The server hands messages that arrive in one read to the session as a batch; the order,
  // the count and the close that follows them must be as if they came one by one.
  ServerFixture fx;
  auto c = fx.open();
  // Built with append: GCC 12 warns falsely (-Wrestrict) on "m" + std::to_string(i).
  auto label = [](int i) { return std::string("m").append(std::to_string(i)); };
  std::string burst;
  for (int i = 0; i < 150; ++i) burst += WsClient::frame_bytes(kOpText, label(i));
  burst += WsClient::frame_bytes(kOpPing, "p");
  burst += WsClient::frame_bytes(kOpText, "after ping");
  burst += WsClient::frame_bytes(kOpClose, std::string("\x03\xe8", 2));
  REQUIRE(c->send_raw(burst));
  for (int i = 0; i < 150; ++i) {
    std::optional<ServerFrame> f = c->read_data_or_close();
    REQUIRE(f);
    REQUIRE(f->payload == label(i));
  }
  std::optional<ServerFrame> f = c->read_data_or_close();
  REQUIRE(f);
  CHECK(f->payload == "after ping");
  CHECK(c->read_close_code() == 1000);
  CHECK(fx.handler->messages.load() == 151);
}

TEST_CASE("messages before a bad frame in the same read are handled before the 1007 close") {
  ServerFixture fx;
  auto c = fx.open();
  std::string burst = WsClient::frame_bytes(kOpText, "first");
  burst += WsClient::frame_bytes(kOpText, "second");
  burst += WsClient::frame_bytes(kOpText, "bad \xff utf-8");
  burst += WsClient::frame_bytes(kOpText, "never");
  REQUIRE(c->send_raw(burst));
  std::optional<ServerFrame> f = c->read_data_or_close();
  REQUIRE(f);
  CHECK(f->payload == "first");
  f = c->read_data_or_close();
  REQUIRE(f);
  CHECK(f->payload == "second");
  f = c->read_data_or_close();
  REQUIRE(f);
  CHECK(f->opcode == kOpClose);
  CHECK(f->close_code() == 1007);
  CHECK(fx.handler->messages.load() == 2);
}

}  // namespace relaycore::websocket::test
