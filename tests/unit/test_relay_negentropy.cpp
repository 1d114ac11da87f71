// NIP-77 through a session, as a client sees it: a whole sync against the relay's events, the
// limits (records per sync, sessions per connection, idle sessions) and bad input, after which
// the connection still works.
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "relay_test_util.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/message.hpp"
#include "relaycore/negentropy.hpp"
#include "relaycore/relay.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;

namespace {

std::string to_hex_bytes(std::string_view bytes) {
  std::string out(bytes.size() * 2, '\0');
  hex_encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), out.data());
  return out;
}

// The last element of ["NEG-MSG", <sub>, <hex>] or ["NEG-ERR", <sub>, <reason>].
std::string last_string(const std::string& frame) {
  const std::size_t end = frame.rfind('"');
  const std::size_t begin = frame.rfind('"', end - 1);
  return frame.substr(begin + 1, end - begin - 1);
}

struct Fixture : test::SessionFixture {
  explicit Fixture(std::function<void(Options&)> tweak = nullptr)
      : SessionFixture(std::move(tweak), 1) {}

  // Sends a frame and returns the first new frame that starts with one of `heads`.
  std::string answer(const std::string& frame, std::vector<std::string> heads) {
    const std::size_t before = conn->frames().size();
    session->on_message(frame);
    std::string found;
    conn->wait_until([&](const std::vector<std::string>& fs) {
      for (std::size_t i = before; i < fs.size(); ++i) {
        for (const std::string& h : heads) {
          if (fs[i].rfind(h, 0) == 0) {
            found = fs[i];
            return true;
          }
        }
      }
      return false;
    });
    return found;
  }

  std::string neg(const std::string& frame, const std::string& sub) {
    return answer(frame,
                  {"[\"NEG-MSG\",\"" + sub + "\"", "[\"NEG-ERR\",\"" + sub + "\"", "[\"NOTICE\""});
  }

  std::vector<EventPtr> publish(int n, std::int64_t created_at) {
    std::vector<EventPtr> events;
    for (int i = 0; i < n; ++i) {
      EventPtr e = test::signed_event(test::alice(), 1, created_at + i % 7, std::to_string(i));
      session->on_message("[\"EVENT\"," + std::string(e->json()) + "]");
      events.push_back(e);
    }
    REQUIRE(conn->wait_count("[\"OK\"", static_cast<std::size_t>(n)));
    return events;
  }

  // True when the connection still serves a REQ.
  bool still_usable() {
    return !answer("[\"REQ\",\"alive\",{\"limit\":1}]", {"[\"EOSE\",\"alive\"]"}).empty();
  }
};

}  // namespace

TEST_CASE("NIP-77: a client syncs with the relay and learns what each side lacks",
          "[relay][negentropy]") {
  Fixture f([](Options& o) { o.negentropy.frame_size_limit = 4096; });
  const std::int64_t t = test::now() - 1000;
  std::vector<EventPtr> stored = f.publish(120, t);

  // The client has 80 of the relay's events and 50 of its own.
  std::vector<NegentropyItem> mine;
  std::set<EventId> relay_only, client_only;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const Event& e = *stored[i];
    if (i % 3 == 0) {
      relay_only.insert(e.id());
    } else {
      mine.push_back({static_cast<std::uint64_t>(e.created_at()), e.id()});
    }
  }
  std::mt19937_64 rng(5);
  for (int i = 0; i < 50; ++i) {
    NegentropyItem it{static_cast<std::uint64_t>(t + i % 11), {}};
    for (auto& b : it.id) b = static_cast<std::uint8_t>(rng());
    mine.push_back(it);
    client_only.insert(it.id);
  }
  NegentropyOptions small;
  small.frame_size_limit = 4096;
  Negentropy client(make_negentropy_set(mine), small);
  std::vector<EventId> have, need;
  std::string reply = f.neg(
      "[\"NEG-OPEN\",\"s\",{\"kinds\":[1]},\"" + to_hex_bytes(client.initiate()) + "\"]", "s");
  int rounds = 0;
  for (;;) {
    REQUIRE(reply.rfind("[\"NEG-MSG\",\"s\",", 0) == 0);
    std::string bytes(last_string(reply).size() / 2, '\0');
    REQUIRE(hex_decode(last_string(reply), reinterpret_cast<std::uint8_t*>(bytes.data()),
                       bytes.size()));
    CHECK(bytes.size() <= 4096);
    Result<std::string> next = client.reconcile(bytes, have, need);
    REQUIRE(next.is_ok());
    if (next->empty()) break;
    REQUIRE(++rounds < 50);
    reply = f.neg("[\"NEG-MSG\",\"s\",\"" + to_hex_bytes(*next) + "\"]", "s");
  }
  CHECK(std::set<EventId>(need.begin(), need.end()) == relay_only);
  CHECK(std::set<EventId>(have.begin(), have.end()) == client_only);
  CHECK(need.size() == relay_only.size());
  CHECK(have.size() == client_only.size());

  // After NEG-CLOSE the id is unknown.
  f.session->on_message("[\"NEG-CLOSE\",\"s\"]");
  std::string after = f.neg("[\"NEG-MSG\",\"s\",\"61\"]", "s");
  CHECK(after.rfind("[\"NEG-ERR\",\"s\",\"closed: ", 0) == 0);
  CHECK(f.still_usable());
}

TEST_CASE("NIP-77: a filter over the record cap is blocked, and a limit keeps it under",
          "[relay][negentropy]") {
  Fixture f([](Options& o) { o.negentropy.max_records = 10; });
  f.publish(20, test::now() - 100);
  const std::string empty_set = to_hex_bytes(Negentropy(make_negentropy_set({})).initiate());
  std::string big = f.neg("[\"NEG-OPEN\",\"b\",{},\"" + empty_set + "\"]", "b");
  CHECK(big.rfind("[\"NEG-ERR\",\"b\",\"blocked: ", 0) == 0);
  CHECK(big.find("more than 10 events") != std::string::npos);

  // With limit 10 the sync covers the newest 10, and the empty client needs exactly those.
  std::string ok = f.neg("[\"NEG-OPEN\",\"l\",{\"limit\":10},\"" + empty_set + "\"]", "l");
  REQUIRE(ok.rfind("[\"NEG-MSG\",\"l\",", 0) == 0);
  std::string bytes(last_string(ok).size() / 2, '\0');
  REQUIRE(hex_decode(last_string(ok), reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()));
  Negentropy client(make_negentropy_set({}));
  std::vector<EventId> have, need;
  REQUIRE(client.reconcile(bytes, have, need).is_ok());
  CHECK(need.size() == 10);
  CHECK(f.still_usable());
}

TEST_CASE("NIP-77: sessions per connection are capped, and idle ones are closed",
          "[relay][negentropy]") {
  SECTION("cap") {
    Fixture f([](Options& o) { o.negentropy.max_sessions = 2; });
    CHECK(f.neg("[\"NEG-OPEN\",\"a\",{},\"61\"]", "a").rfind("[\"NEG-MSG\",\"a\"", 0) == 0);
    CHECK(f.neg("[\"NEG-OPEN\",\"b\",{},\"61\"]", "b").rfind("[\"NEG-MSG\",\"b\"", 0) == 0);
    std::string third = f.neg("[\"NEG-OPEN\",\"c\",{},\"61\"]", "c");
    CHECK(third.rfind("[\"NEG-ERR\",\"c\",\"rate-limited: ", 0) == 0);
    // Reopening an open id replaces it rather than counting twice.
    CHECK(f.neg("[\"NEG-OPEN\",\"a\",{},\"61\"]", "a").rfind("[\"NEG-MSG\",\"a\"", 0) == 0);
    f.session->on_message("[\"NEG-CLOSE\",\"b\"]");
    CHECK(f.neg("[\"NEG-OPEN\",\"c\",{},\"61\"]", "c").rfind("[\"NEG-MSG\",\"c\"", 0) == 0);
  }
  SECTION("idle") {
    Fixture f([](Options& o) { o.negentropy.idle_timeout_ms = 50; });
    CHECK(f.neg("[\"NEG-OPEN\",\"i\",{},\"61\"]", "i").rfind("[\"NEG-MSG\",\"i\"", 0) == 0);
    REQUIRE(f.conn->wait_count("[\"NEG-ERR\",\"i\",\"closed: ", 1));
    CHECK(f.neg("[\"NEG-MSG\",\"i\",\"61\"]", "i").rfind("[\"NEG-ERR\",\"i\",\"closed: ", 0) == 0);
    CHECK(f.still_usable());
  }
  SECTION("turned off") {
    Fixture f([](Options& o) { o.negentropy.max_sessions = 0; });
    CHECK(f.neg("[\"NEG-OPEN\",\"o\",{},\"61\"]", "o").rfind("[\"NEG-ERR\",\"o\",\"blocked: ", 0) ==
          0);
    CHECK(f.relay->info_document().find("77") == std::string::npos);
  }
  Fixture on;
  CHECK(on.relay->info_document().find("70,77]") != std::string::npos);
}

TEST_CASE("NIP-77: bad input gets NEG-ERR or NOTICE and the connection stays usable",
          "[relay][negentropy]") {
  Fixture f;
  auto err = [&](const std::string& frame, const std::string& sub) { return f.neg(frame, sub); };
  CHECK(err("[\"NEG-OPEN\",\"h\",{},\"6x\"]", "h").rfind("[\"NEG-ERR\",\"h\",\"invalid: ", 0) == 0);
  CHECK(err("[\"NEG-OPEN\",\"h\",{},\"610\"]", "h").rfind("[\"NEG-ERR\",\"h\",\"invalid: ", 0) ==
        0);
  CHECK(err("[\"NEG-OPEN\",\"h\",{\"kinds\":\"x\"},\"61\"]", "h")
            .rfind("[\"NEG-ERR\",\"h\",\"invalid: ", 0) == 0);
  CHECK(err("[\"NEG-OPEN\",\"h\",{}]", "h").rfind("[\"NEG-ERR\",\"h\",\"invalid: ", 0) == 0);
  CHECK(err("[\"NEG-OPEN\",7,{},\"61\"]", "7").rfind("[\"NOTICE\",\"invalid: ", 0) == 0);
  CHECK(err("[\"NEG-OPEN\",\"s\",{\"search\":\"x\"},\"61\"]", "s")
            .rfind("[\"NEG-ERR\",\"s\",\"blocked: ", 0) == 0);
  // Not a negentropy message at all.
  std::string bad_version = err("[\"NEG-OPEN\",\"v\",{},\"05\"]", "v");
  CHECK(bad_version.rfind("[\"NEG-ERR\",\"v\",\"invalid: ", 0) == 0);
  CHECK(bad_version.find("version") != std::string::npos);
  // A later protocol version: answered with the version spoken here, as the protocol asks.
  CHECK(err("[\"NEG-OPEN\",\"w\",{},\"62\"]", "w") == "[\"NEG-MSG\",\"w\",\"61\"]");
  // A range with an unknown mode, and one cut short.
  std::string mode = err("[\"NEG-OPEN\",\"m\",{},\"61000007\"]", "m");
  CHECK(mode.rfind("[\"NEG-ERR\",\"m\",\"invalid: ", 0) == 0);
  CHECK(mode.find("mode") != std::string::npos);
  CHECK(
      err("[\"NEG-OPEN\",\"c\",{},\"610001aa\"]", "c").rfind("[\"NEG-ERR\",\"c\",\"invalid: ", 0) ==
      0);
  // A NEG-MSG for a session never opened, or one closed by an error.
  CHECK(err("[\"NEG-MSG\",\"nope\",\"61\"]", "nope").rfind("[\"NEG-ERR\",\"nope\",\"closed: ", 0) ==
        0);
  CHECK(err("[\"NEG-MSG\",\"m\",\"61\"]", "m").rfind("[\"NEG-ERR\",\"m\",\"closed: ", 0) == 0);
  CHECK(f.answer("[\"NEG-CLOSE\"]", {"[\"NOTICE\""}).rfind("[\"NOTICE\",\"invalid: ", 0) == 0);
  CHECK(f.still_usable());
}
