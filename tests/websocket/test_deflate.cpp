// permessage-deflate without sockets: which offers are accepted and what the answer says, and
// the server's engine against an independent zlib peer, a bomb and bad data included.
#include <catch2/catch.hpp>

#include "deflate_peer.hpp"
#include "relaycore/event.hpp"
#include "websocket/deflate.hpp"

namespace relaycore::websocket::test {
namespace {

using detail::Deflate;
using detail::deflate_response;
using detail::InflateResult;
using detail::negotiate_deflate;

std::optional<detail::DeflateParams> offer(std::initializer_list<std::string> values) {
  HttpRequest r;
  r.headers.emplace_back("host", "localhost");
  for (const std::string& v : values) r.headers.emplace_back("sec-websocket-extensions", v);
  return negotiate_deflate(r);
}

std::string answer(std::initializer_list<std::string> values) {
  const auto params = offer(values);
  return params ? deflate_response(*params) : "declined";
}

constexpr std::string_view kPlain = "permessage-deflate; client_no_context_takeover";
constexpr std::string_view kBoth =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

EventPtr note(std::string content) {
  const std::string json = R"({"id":")" + std::string(64, 'a') + R"(","pubkey":")" +
                           std::string(64, 'b') + R"(","created_at":1700000000,"kind":1,)" +
                           R"("tags":[["t","nostr"]],"content":")" + content + R"(","sig":")" +
                           std::string(128, 'c') + R"("})";
  Result<EventPtr> e = parse_event(json);
  REQUIRE(e);
  return *e;
}

}  // namespace

TEST_CASE("deflate: offers are accepted, never with the client's context takeover") {
  // Chromium and the ws package.
  CHECK(answer({"permessage-deflate; client_max_window_bits"}) == kPlain);
  CHECK(answer({"permessage-deflate"}) == kPlain);
  CHECK(offer({"permessage-deflate"})->server_context_takeover);
  CHECK(answer({"Permessage-Deflate; Client_No_Context_Takeover"}) == kPlain);
  // The server's own context takeover is dropped when the client asks.
  CHECK(answer({"permessage-deflate; server_no_context_takeover; client_max_window_bits=10"}) ==
        kBoth);
  CHECK_FALSE(offer({"permessage-deflate; server_no_context_takeover"})->server_context_takeover);
}

TEST_CASE("deflate: the server window the client limits is echoed and used") {
  CHECK(answer({"permessage-deflate; server_max_window_bits=10"}) ==
        std::string(kPlain) + "; server_max_window_bits=10");
  CHECK(offer({"permessage-deflate; server_max_window_bits=\"12\""})->server_window_bits == 12);
  CHECK(offer({"permessage-deflate; server_max_window_bits=15"})->server_window_bits == 15);
  CHECK(answer({"permessage-deflate; server_max_window_bits=15"}) == kPlain);
}

TEST_CASE("deflate: bad offers are declined, and the next acceptable one is taken") {
  CHECK(answer({"x-webkit-deflate-frame"}) == "declined");
  CHECK(answer({"permessage-deflate; foo"}) == "declined");
  CHECK(answer({"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}) ==
        "declined");
  CHECK(answer({"permessage-deflate; server_no_context_takeover=1"}) == "declined");
  CHECK(answer({"permessage-deflate; server_max_window_bits"}) == "declined");
  CHECK(answer({"permessage-deflate; server_max_window_bits=16"}) == "declined");
  CHECK(answer({"permessage-deflate; server_max_window_bits=7"}) == "declined");
  CHECK(answer({"permessage-deflate; server_max_window_bits=010"}) == "declined");
  CHECK(answer({"permessage-deflate; client_max_window_bits=x"}) == "declined");
  // zlib cannot keep to a 256-byte window in raw deflate, so 8 is declined...
  CHECK(answer({"permessage-deflate; server_max_window_bits=8"}) == "declined");
  // ...and a fallback offer, in the same header or another one, is taken instead.
  CHECK(answer({"permessage-deflate; server_max_window_bits=8, permessage-deflate; "
                "server_max_window_bits=9"}) == std::string(kPlain) + "; server_max_window_bits=9");
  CHECK(answer({"foo, permessage-deflate; bar", "permessage-deflate"}) == kPlain);
}

TEST_CASE("deflate: a compressed message round-trips through an independent zlib peer") {
  Deflate deflate;
  const std::string text = R"(["NOTICE","hello hello hello hello hello hello hello"])";
  const std::string wire = deflate.compress_frame(Frame(text), 15);
  CHECK(wire.size() < text.size());
  std::string back;
  REQUIRE(peer_inflate(wire, back));
  CHECK(back == text);

  std::string in;
  REQUIRE(deflate.inflate_message(peer_compress(text), 1 << 20, in) == InflateResult::kOk);
  CHECK(in == text);
  // A message ending in a final block is as good as one ending in a sync flush.
  REQUIRE(deflate.inflate_message(peer_compress(text, true), 1 << 20, in) == InflateResult::kOk);
  CHECK(in == text);
  REQUIRE(deflate.inflate_message(peer_compress(""), 1 << 20, in) == InflateResult::kOk);
  CHECK(in.empty());
}

TEST_CASE("deflate: an EVENT's body is compressed once and shared by every subscriber") {
  Deflate deflate;
  const EventPtr event = note("a note that every subscriber receives, a note, a note");
  const Frame a(R"(["EVENT","sub1",)", event);
  const Frame b(R"(["EVENT","a-much-longer-subscription-id",)", event);
  const std::string wa = deflate.compress_frame(a, 15);
  const std::string wb = deflate.compress_frame(b, 15);
  std::string back;
  REQUIRE(peer_inflate(wa, back));
  CHECK(back == a.to_string());
  REQUIRE(peer_inflate(wb, back));
  CHECK(back == b.to_string());
  // Everything after the stored head is the same bytes: the event was compressed once.
  const std::size_t head_a = 5 + a.parts()[0].size(), head_b = 5 + b.parts()[0].size();
  CHECK(wa.substr(head_a) == wb.substr(head_b));
  CHECK(deflate.events_compressed() == 1);
  CHECK(wa.size() < a.size());
  // Another window size compresses the event anew, and the result still decodes.
  REQUIRE(peer_inflate(deflate.compress_frame(a, 9), back));
  CHECK(back == a.to_string());
  CHECK(deflate.events_compressed() == 2);
}

TEST_CASE("deflate: a held compressor makes a burst's messages refer to each other") {
  Deflate deflate;
  const EventPtr a = note("first of a burst of notes with much in common, much in common");
  const EventPtr b = note("second of a burst of notes with much in common, much in common");
  Deflate::Held held = deflate.hold(15);
  REQUIRE(held);
  const Frame fa(R"(["EVENT","s",)", a), fb(R"(["EVENT","s",)", b);
  const std::string wa = deflate.compress_frame(held, fa);
  const std::string wb = deflate.compress_frame(held, fb);
  CHECK(wb.size() < deflate.compress_frame(fb, 15).size() / 2);
  PeerInflater peer;
  std::string text;
  REQUIRE(peer.inflate_message(wa, text));
  CHECK(text == fa.to_string());
  REQUIRE(peer.inflate_message(wb, text));
  CHECK(text == fb.to_string());
  // Once it is back, fresh messages follow on the same peer.
  deflate.release(std::move(held));
  REQUIRE(peer.inflate_message(deflate.compress_frame(fa, 15), text));
  CHECK(text == fa.to_string());

  // Held compressors are capped server-wide.
  std::vector<Deflate::Held> all;
  for (std::size_t i = 0; i < Deflate::kMaxHeld; ++i) {
    all.push_back(deflate.hold(15));
    REQUIRE(all.back());
  }
  CHECK_FALSE(deflate.hold(15));
  deflate.release(std::move(all.back()));
  all.pop_back();
  Deflate::Held again = deflate.hold(15);
  CHECK(again);
  deflate.release(std::move(again));
  for (Deflate::Held& h : all) deflate.release(std::move(h));
}

TEST_CASE("deflate: a bomb stops at the limit, and bad data is refused") {
  Deflate deflate;
  const std::string zeros(16u << 20, '\0');
  const std::string bomb = peer_compress(zeros);
  CHECK(bomb.size() < 32 * 1024);
  std::string out;
  CHECK(deflate.inflate_message(bomb, 1 << 20, out) == InflateResult::kTooBig);
  CHECK(out.empty());
  CHECK(out.capacity() <= (1u << 20) + 64);  // never grew past the limit
  // Exactly at the limit is fine.
  CHECK(deflate.inflate_message(peer_compress(std::string(1000, 'x')), 1000, out) ==
        InflateResult::kOk);
  CHECK(deflate.inflate_message(peer_compress(std::string(1001, 'x')), 1000, out) ==
        InflateResult::kTooBig);

  CHECK(deflate.inflate_message("\xff\xff\xff\xff garbage", 1 << 20, out) ==
        InflateResult::kBadData);
  // Cut short in the middle of a block.
  const std::string whole = peer_compress("some text that is long enough to be a real block");
  CHECK(deflate.inflate_message(whole.substr(0, whole.size() / 2), 1 << 20, out) ==
        InflateResult::kBadData);
  // Bytes after a final block.
  CHECK(deflate.inflate_message(peer_compress("done", true) + "junk", 1 << 20, out) ==
        InflateResult::kBadData);
  // The pool is not poisoned by a failure.
  CHECK(deflate.inflate_message(peer_compress("fine"), 1 << 20, out) == InflateResult::kOk);
  CHECK(out == "fine");
}

}  // namespace relaycore::websocket::test
