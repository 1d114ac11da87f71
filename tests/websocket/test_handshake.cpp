// The HTTP side: the RFC 6455 opening handshake, refused handshakes, and plain HTTP requests.
#include <catch2/catch.hpp>

#include "test_server_util.hpp"

namespace relaycore::websocket::test {
namespace {

// Sends `request` and expects an HTTP error with `status`, then the connection closed.
void expect_refused(ServerFixture& fx, const std::string& request, int status) {
  WsClient c(fx.port());
  REQUIRE(c.connected());
  REQUIRE(c.send_raw(request));
  std::optional<HttpReply> reply = c.read_http();
  REQUIRE(reply);
  CHECK(reply->status == status);
  CHECK(reply->head.find("Connection: close\r\n") != std::string::npos);
  CHECK(c.eof());
  CHECK(fx.handler->opens.load() == 0);
}

std::string request_without(std::string_view header) {
  std::string r = WsClient::upgrade_request();
  const std::size_t at = r.find(header);
  REQUIRE(at != std::string::npos);
  r.erase(at, r.find("\r\n", at) + 2 - at);
  return r;
}

}  // namespace

TEST_CASE("handshake with the RFC 6455 example key gets 101 and the RFC accept value") {
  ServerFixture fx;
  WsClient c(fx.port());
  REQUIRE(c.connected());
  REQUIRE(c.handshake(kRfcKey));
  const std::string& head = c.last_head();
  CHECK(head.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
  CHECK(head.find("Sec-WebSocket-Accept: " + std::string(kRfcAccept) + "\r\n") !=
        std::string::npos);
  CHECK(head.find("Upgrade: websocket\r\n") != std::string::npos);
  CHECK(head.find("Connection: Upgrade\r\n") != std::string::npos);
  CHECK(fx.handler->wait_until([&] { return fx.handler->opens.load() == 1; }));
  REQUIRE(c.send_text("hi"));
  std::optional<ServerFrame> f = c.read_frame();
  REQUIRE(f);
  CHECK(f->payload == "hi");
}

TEST_CASE("handshake header names and tokens are case-insensitive") {
  ServerFixture fx;
  WsClient c(fx.port());
  REQUIRE(c.send_raw(
      "GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: UPGRADE\r\n"
      "sec-websocket-version: 13\r\nSEC-WEBSOCKET-KEY:   dGhlIHNhbXBsZSBub25jZQ==  \r\n\r\n"));
  std::optional<std::string> head = c.read_head();
  REQUIRE(head);
  CHECK(head->rfind("HTTP/1.1 101 ", 0) == 0);
  CHECK(head->find(std::string(kRfcAccept)) != std::string::npos);
}

TEST_CASE("handshake without Sec-WebSocket-Key gets 400 and is closed") {
  ServerFixture fx;
  expect_refused(fx, request_without("Sec-WebSocket-Key"), 400);
  CHECK(fx.server->stats().protocol_errors == 1);
  fx.expect_still_serves();
}

TEST_CASE("handshake with a key that is not 16 base64 bytes gets 400") {
  ServerFixture fx;
  expect_refused(fx, WsClient::upgrade_request("dGhlIHNhbXBsZSBub25j"), 400);
  expect_refused(fx, WsClient::upgrade_request("dGhlIHNhbXBsZSBub25jZQ!="), 400);
  fx.expect_still_serves();
}

TEST_CASE("handshake with the wrong Sec-WebSocket-Version gets 400") {
  ServerFixture fx;
  std::string r = request_without("Sec-WebSocket-Version");
  r.insert(r.size() - 2, "Sec-WebSocket-Version: 8\r\n");
  WsClient c(fx.port());
  REQUIRE(c.send_raw(r));
  std::optional<HttpReply> reply = c.read_http();
  REQUIRE(reply);
  CHECK(reply->status == 400);
  CHECK(reply->head.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
  CHECK(c.eof());
  fx.expect_still_serves();
}

TEST_CASE("handshake that is not a GET gets 400") {
  ServerFixture fx;
  std::string r = WsClient::upgrade_request();
  r.replace(0, 3, "POST");
  expect_refused(fx, r, 400);
  fx.expect_still_serves();
}

TEST_CASE("handshake without the upgrade token in Connection gets 400") {
  ServerFixture fx;
  std::string r = request_without("Connection:");
  r.insert(r.size() - 2, "Connection: keep-alive, upgraded\r\n");
  expect_refused(fx, r, 400);
  fx.expect_still_serves();
}

TEST_CASE("handshake over HTTP/1.0 gets 400") {
  ServerFixture fx;
  std::string r = WsClient::upgrade_request();
  r.replace(r.find("HTTP/1.1"), 8, "HTTP/1.0");
  expect_refused(fx, r, 400);
}

TEST_CASE("malformed request heads get 400") {
  ServerFixture fx;
  expect_refused(fx, "GET /hello\r\n\r\n", 400);
  expect_refused(fx, "GET /hello HTTP/1.1\r\nNo colon here\r\n\r\n", 400);
  expect_refused(fx, "GET /hello HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400);
  expect_refused(fx, "GET /hello HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400);
  expect_refused(fx, "GET /hello HTTP/2.0\r\n\r\n", 400);
  fx.expect_still_serves();
}

TEST_CASE("request head over max_http_header_bytes gets 431 and is closed") {
  ServerOptions o;
  o.max_http_header_bytes = 1024;
  ServerFixture fx(o);
  std::string r = WsClient::upgrade_request(kRfcKey, "X-Pad: " + std::string(2000, 'a') + "\r\n");
  expect_refused(fx, r, 431);
  CHECK(fx.server->stats().oversize_closes == 1);
  // A head that never ends is cut off at the limit too, without waiting for the rest.
  WsClient c(fx.port());
  REQUIRE(c.send_raw("GET / HTTP/1.1\r\nX-Pad: " + std::string(4000, 'b')));
  std::optional<HttpReply> reply = c.read_http();
  REQUIRE(reply);
  CHECK(reply->status == 431);
  fx.expect_still_serves();
}

TEST_CASE("plain GET /hello goes to on_http and gets 200 with the body") {
  ServerFixture fx;
  WsClient c(fx.port());
  REQUIRE(c.send_raw("GET /hello HTTP/1.1\r\nHost: x\r\nX-Name: nostr\r\n\r\n"));
  std::optional<HttpReply> reply = c.read_http();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(reply->body == "hello, nostr\n");
  CHECK(reply->head.find("Content-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
  CHECK(reply->head.find("Content-Length: 13\r\n") != std::string::npos);
  CHECK(reply->head.find("X-Test: yes\r\n") != std::string::npos);
  CHECK(reply->head.find("Injected") == std::string::npos);
  CHECK(c.eof());
}

TEST_CASE("plain GET of an unknown path gets 404") {
  ServerFixture fx;
  WsClient c(fx.port());
  REQUIRE(c.send_raw("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<HttpReply> reply = c.read_http();
  REQUIRE(reply);
  CHECK(reply->status == 404);
  CHECK(c.eof());
}

TEST_CASE("HEAD gets the headers without the body") {
  ServerFixture fx;
  WsClient c(fx.port());
  REQUIRE(c.send_raw("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<HttpReply> reply = c.read_http();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(reply->head.find("Content-Length: 8\r\n") != std::string::npos);  // "hello, \n"
  CHECK(reply->body.empty());
}

TEST_CASE("frames sent right behind the handshake are read") {
  ServerFixture fx;
  WsClient c(fx.port());
  REQUIRE(c.send_raw(WsClient::upgrade_request() + WsClient::frame_bytes(kOpText, "early")));
  std::optional<std::string> head = c.read_head();
  REQUIRE(head);
  CHECK(head->rfind("HTTP/1.1 101 ", 0) == 0);
  std::optional<ServerFrame> f = c.read_frame();
  REQUIRE(f);
  CHECK(f->payload == "early");
}

TEST_CASE("ClientInfo.remote_address is the peer's ip:port") {
  ServerFixture fx;
  auto c = fx.open();
  REQUIRE(fx.handler->wait_until([&] { return fx.handler->opens.load() == 1; }));
  std::lock_guard lock(fx.handler->mu);
  REQUIRE(fx.handler->clients.size() == 1);
  CHECK(fx.handler->clients[0].remote_address == "127.0.0.1:" + std::to_string(c->local_port()));
}

// The forwarding header of one handshake, as the handler's ClientInfo got it.
std::string forwarded_for_of(ServerFixture& fx, std::string_view headers) {
  WsClient c(fx.port());
  REQUIRE(c.connected());
  const int opens = fx.handler->opens.load();
  REQUIRE(c.handshake(kRfcKey, headers));
  REQUIRE(fx.handler->wait_until([&] { return fx.handler->opens.load() == opens + 1; }));
  std::lock_guard lock(fx.handler->mu);
  return fx.handler->clients.back().forwarded_for;
}

TEST_CASE("ClientInfo.forwarded_for is the forwarding header, every line of it in order") {
  SECTION("x-forwarded-for by default") {
    ServerFixture fx;
    CHECK(forwarded_for_of(fx, "X-Forwarded-For: 203.0.113.7\r\n") == "203.0.113.7");
    // A proxy may add a line of its own rather than append to the client's.
    CHECK(forwarded_for_of(fx,
                           "x-forwarded-for: 198.51.100.1, 10.0.0.3\r\n"
                           "X-Real-IP: 192.0.2.9\r\n"
                           "X-FORWARDED-FOR: 203.0.113.7\r\n") ==
          "198.51.100.1, 10.0.0.3, 203.0.113.7");
    CHECK(forwarded_for_of(fx, "X-Real-IP: 192.0.2.9\r\n").empty());
    CHECK(forwarded_for_of(fx, "").empty());
  }
  SECTION("another header, named in any case") {
    ServerOptions o;
    o.forwarded_header = "X-Real-IP";
    ServerFixture fx(o);
    CHECK(forwarded_for_of(fx, "X-Forwarded-For: 198.51.100.1\r\nX-Real-IP: 192.0.2.9\r\n") ==
          "192.0.2.9");
  }
  SECTION("none") {
    ServerOptions o;
    o.forwarded_header = "";
    ServerFixture fx(o);
    CHECK(forwarded_for_of(fx, "X-Forwarded-For: 203.0.113.7\r\n").empty());
  }
}

}  // namespace relaycore::websocket::test

namespace relaycore::websocket::test {

TEST_CASE("start reports a port that is already taken as an error") {
  ServerFixture fx;
  ServerOptions o;
  o.port = fx.port();
  Result<std::unique_ptr<Server>> second = Server::start(o, fx.handler);
  REQUIRE_FALSE(second);
  CHECK(second.error().message().find("bind") != std::string::npos);
  CHECK_FALSE(Server::start(ServerOptions{}, nullptr));
}

}  // namespace relaycore::websocket::test
