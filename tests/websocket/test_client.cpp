// relaycore::websocket::Client against the library's own server, and against a fake server that
// answers the handshake wrongly.
#include <thread>

#include "relaycore/websocket/client.hpp"
#include "test_server_util.hpp"

namespace relaycore::websocket::test {
namespace {

std::unique_ptr<Client> connect_to(std::uint16_t port, const ClientOptions& options = {}) {
  Result<std::unique_ptr<Client>> c =
      Client::connect("ws://127.0.0.1:" + std::to_string(port) + "/ws", options);
  if (!c) FAIL("connect failed: " << c.error().message());
  return std::move(c).value();
}

// A one-shot HTTP server that reads a request head and answers with `response`, standing in for
// a server that gets the handshake wrong.
class FakeServer {
 public:
  explicit FakeServer(std::string response)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, response = std::move(response)] {
      asio::error_code ec;
      asio::ip::tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      std::array<char, 1024> chunk{};
      while (head_.find("\r\n\r\n") == std::string::npos) {
        const std::size_t n = socket.read_some(asio::buffer(chunk), ec);
        if (ec) return;
        head_.append(chunk.data(), n);
      }
      asio::write(socket, asio::buffer(response), ec);
      socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    });
  }
  ~FakeServer() {
    if (thread_.joinable()) thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // The request head it read, once it has answered.
  const std::string& request_head() {
    if (thread_.joinable()) thread_.join();
    return head_;
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::string head_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("client: messages round-trip with 7-, 16- and 64-bit lengths, masked") {
  // The server closes with 1002 on any unmasked client frame, so an echo proves the masking.
  ServerFixture fx;
  auto client = connect_to(fx.port());
  for (std::size_t size : {5u, 300u, 70000u}) {
    std::string text(size, 'x');
    text.front() = '[';
    REQUIRE(client->send_text(text));
    Result<std::string> echo = client->receive_text(5000ms);
    REQUIRE(echo);
    CHECK(echo.value() == text);
  }
  client->close();
  CHECK(fx.server->stats().protocol_errors == 0);
}

TEST_CASE("client: receive answers the server's pings, so an idle connection stays open") {
  ServerOptions options;
  options.idle_timeout_seconds = 1;  // ping after 0.5 s, closed after 1 s without a frame
  ServerFixture fx(options);
  auto client = connect_to(fx.port());
  Result<std::string> nothing = client->receive_text(2500ms);
  REQUIRE_FALSE(nothing);
  CHECK(nothing.error().message().find("timed out") != std::string::npos);
  CHECK(fx.server->stats().idle_closes == 0);
  REQUIRE(client->send_text("still here"));
  Result<std::string> echo = client->receive_text(5000ms);
  REQUIRE(echo);
  CHECK(echo.value() == "still here");
  client->close();
}

TEST_CASE("client: the server's close frame ends receive with its code and reason") {
  ServerFixture fx;
  fx.handler->on_text = [](const std::shared_ptr<Connection>& c, std::string_view) {
    c->close("go away");
  };
  auto client = connect_to(fx.port());
  REQUIRE(client->send_text("hello"));
  Result<std::string> got = client->receive_text(5000ms);
  REQUIRE_FALSE(got);
  CHECK(got.error().message().find("closed by the server: 1008 go away") != std::string::npos);
  CHECK_FALSE(client->send_text("after close"));
  // The client answered the close frame, so the server's handshake completed cleanly.
  CHECK(fx.handler->wait_until([&] { return fx.handler->closes.load() == 1; }));
  CHECK(fx.server->stats().protocol_errors == 0);
}

TEST_CASE("client: close() completes the close handshake") {
  ServerFixture fx;
  auto client = connect_to(fx.port());
  REQUIRE(client->ping("are you there"));
  REQUIRE(client->send_text("bye"));
  Result<std::string> echo = client->receive_text(5000ms);  // the pong is skipped
  REQUIRE(echo);
  CHECK(echo.value() == "bye");
  client->close();
  CHECK(fx.handler->wait_until([&] { return fx.handler->closes.load() == 1; }));
  CHECK(fx.server->stats().protocol_errors == 0);
  CHECK_FALSE(client->send_text("closed"));
}

TEST_CASE("client: a message over max_message_bytes fails the connection") {
  ServerFixture fx;
  ClientOptions options;
  options.max_message_bytes = 1000;
  auto client = connect_to(fx.port(), options);
  REQUIRE(client->send_text(std::string(999, 'a')));
  Result<std::string> fits = client->receive_text(5000ms);
  REQUIRE(fits);
  CHECK(fits.value().size() == 999);
  REQUIRE(client->send_text(std::string(1001, 'b')));
  Result<std::string> too_big = client->receive_text(5000ms);
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().message().find("message too big") != std::string::npos);
  CHECK_FALSE(client->send_text("after failure"));
}

TEST_CASE("client: a wrong Sec-WebSocket-Accept or a refused upgrade fails connect") {
  SECTION("wrong accept") {
    FakeServer fake(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        std::string(kRfcAccept) + "\r\n\r\n");
    Result<std::unique_ptr<Client>> c =
        Client::connect("ws://127.0.0.1:" + std::to_string(fake.port()));
    REQUIRE_FALSE(c);
    CHECK(c.error().message().find("Sec-WebSocket-Accept") != std::string::npos);
  }
  SECTION("refused") {
    FakeServer fake("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    Result<std::unique_ptr<Client>> c =
        Client::connect("ws://127.0.0.1:" + std::to_string(fake.port()) + "/private");
    REQUIRE_FALSE(c);
    CHECK(c.error().message().find("403 Forbidden") != std::string::npos);
  }
}

TEST_CASE("client: extra headers go with the handshake; bad or reserved ones are refused") {
  ServerFixture fx;
  ClientOptions options;
  options.headers = {{"X-Forwarded-For", "203.0.113.7"}, {"Authorization", "Bearer t"}};
  auto client = connect_to(fx.port(), options);
  REQUIRE(fx.handler->wait_until([&] { return fx.handler->opens.load() == 1; }));
  {
    std::lock_guard lock(fx.handler->mu);
    CHECK(fx.handler->clients.back().forwarded_for == "203.0.113.7");
  }
  client->close();

  const std::vector<std::pair<std::string, std::string>> bad[] = {
      {{"X-Forwarded-For", "203.0.113.7\r\nX-Injected: 1"}},
      {{"Bad Name", "x"}},
      {{"", "x"}},
      {{"sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="}},
      {{"Host", "elsewhere"}},
      {{"Upgrade", "h2c"}}};
  for (const auto& headers : bad) {
    INFO(headers[0].first);
    options.headers = headers;
    Result<std::unique_ptr<Client>> c =
        Client::connect("ws://127.0.0.1:" + std::to_string(fx.port()), options);
    REQUIRE_FALSE(c);
    CHECK(c.error().message().rfind("invalid:", 0) == 0);
  }
  // Refused before connecting.
  CHECK(fx.server->stats().connections_total == 1);
}

TEST_CASE("client: URLs other than ws://host[:port][/path] are refused") {
  for (const char* url : {"http://127.0.0.1:1/", "wss://127.0.0.1/", "ws://", "ws://h:0/",
                          "ws://h:70000/", "ws://h:12x/", "ws://[::1/"}) {
    Result<std::unique_ptr<Client>> c = Client::connect(url);
    REQUIRE_FALSE(c);
    CHECK(c.error().message().rfind("invalid:", 0) == 0);
  }
}

TEST_CASE("client: fetch_relay_information GETs the NIP-11 document") {
  SECTION("a 200 answer with Content-Length, from the library's server") {
    ServerFixture fx;
    Result<std::string> body =
        fetch_relay_information("ws://127.0.0.1:" + std::to_string(fx.port()) + "/hello");
    REQUIRE(body);
    CHECK(*body == "hello, \n");
  }
  SECTION("the request asks for application/nostr+json; a body without length ends at EOF") {
    FakeServer fake(
        "HTTP/1.1 200 OK\r\nContent-Type: application/nostr+json\r\n\r\n"
        "{\"supported_nips\":[1,77]}");
    Result<std::string> body =
        fetch_relay_information("ws://127.0.0.1:" + std::to_string(fake.port()) + "/r");
    REQUIRE(body);
    CHECK(*body == "{\"supported_nips\":[1,77]}");
    const std::string& head = fake.request_head();
    CHECK(head.rfind("GET /r HTTP/1.1\r\n", 0) == 0);
    CHECK(head.find("\r\nAccept: application/nostr+json\r\n") != std::string::npos);
  }
  SECTION("another status fails with it") {
    FakeServer fake("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    Result<std::string> body =
        fetch_relay_information("ws://127.0.0.1:" + std::to_string(fake.port()));
    REQUIRE_FALSE(body);
    CHECK(body.error().message().find("404 Not Found") != std::string::npos);
  }
}

}  // namespace relaycore::websocket::test
