#include <catch2/catch.hpp>

#include <type_traits>
#include <utility>

#include "relaycore/audit.hpp"
#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/storage.hpp"
#include "test_util.hpp"

using namespace relaycore;

TEST_CASE("A signed event verifies and round-trips byte-identically", "[event]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1700000000, "hello \"world\"\n\x01",
                                   {{"e", std::string(64, 'a')}, {"t", "nostr"}});
  CHECK(ev->verify().is_ok());
  Result<EventPtr> again = parse_event(ev->json());
  REQUIRE(again.is_ok());
  CHECK((*again)->json() == ev->json());
  CHECK((*again)->verify().is_ok());
  CHECK((*again)->content() == "hello \"world\"\n\x01");
  CHECK((*again)->tags().size() == 2);
  CHECK(ev->id_hex() == to_hex(ev->id()));
  CHECK(ev->pubkey_hex() == to_hex(test::alice().pubkey()));
  CHECK(ev->sig_hex() == to_hex(ev->sig()));
}

TEST_CASE("Canonical JSON drops unknown fields and whitespace, keeps key order", "[event]") {
  EventPtr ev = test::signed_event(test::alice(), 7, 1700000001, "+");
  std::string spaced = "{ \"sig\": \"" + std::string(ev->sig_hex()) + "\", \"kind\": 7,\n" +
                       "\"extra\": {\"nested\": [1,2]}, \"content\": \"+\", \"tags\": [ ],\n" +
                       "\"created_at\": 1700000001, \"pubkey\": \"" +
                       std::string(ev->pubkey_hex()) + "\", \"id\": \"" +
                       std::string(ev->id_hex()) + "\" }";
  Result<EventPtr> parsed = parse_event(spaced);
  REQUIRE(parsed.is_ok());
  CHECK((*parsed)->json() == ev->json());
  CHECK((*parsed)->json().find("extra") == std::string_view::npos);
  CHECK((*parsed)->verify().is_ok());
}

TEST_CASE("Escaped input is stored in the canonical escape form", "[event]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1, "a/b\x7f\u2028");
  std::string json(ev->json());
  // The client escaped '/' and DEL; the canonical form writes them verbatim.
  std::size_t at = json.find("\"content\":");
  std::string client = json.substr(0, at) + "\"content\":\"a\\/b\\u007f\\u2028\"" +
                       json.substr(json.find(",\"sig\""));
  Result<EventPtr> parsed = parse_event(client);
  REQUIRE(parsed.is_ok());
  CHECK((*parsed)->json() == ev->json());
}

TEST_CASE("A tampered event fails verification with a clear reason", "[event]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1700000000, "original");
  std::string json(ev->json());
  std::string changed = json;
  changed.replace(changed.find("original"), 8, "tampered");
  Result<EventPtr> t = parse_event(changed);
  REQUIRE(t.is_ok());
  CHECK(t.value()->verify().message() == "invalid: event id does not match its content");

  // Same id and content, signature from another key.
  EventPtr other = test::signed_event(test::bob(), 1, 1700000000, "original");
  std::string forged = json;
  forged.replace(forged.find(ev->sig_hex()), 128, other->sig_hex());
  Result<EventPtr> f = parse_event(forged);
  REQUIRE(f.is_ok());
  CHECK(f.value()->check_id().is_ok());
  CHECK(f.value()->verify().message() == "invalid: bad signature");
}

// Verification keeps parsed keys between calls; a key seen before must vouch only for its own
// signatures, and eviction (200 keys, more than are kept) must not change an answer.
TEST_CASE("Verification answers the same for authors seen before", "[event]") {
  std::vector<Keypair> keys;
  std::vector<EventPtr> events;
  for (int i = 0; i < 200; ++i) {
    keys.push_back(Keypair::generate());
    events.push_back(test::signed_event(keys.back(), 1, 1700000000 + i, "note"));
  }
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < events.size(); ++i) {
      const EventPtr& ev = events[i];
      const Pubkey& other = keys[(i + 1) % keys.size()].pubkey();
      CHECK(verify_schnorr(ev->pubkey(), ev->sig(), ev->id().data(), ev->id().size()));
      CHECK_FALSE(verify_schnorr(other, ev->sig(), ev->id().data(), ev->id().size()));
      CHECK(ev->verify().is_ok());
    }
  }
  // An x-only key that is not on the curve never verifies, however often it is tried.
  Pubkey off_curve{};
  off_curve.fill(0xff);
  for (int i = 0; i < 2; ++i) {
    CHECK_FALSE(verify_schnorr(off_curve, events[0]->sig(), events[0]->id().data(), 32));
  }
}

// A kind has one width wherever the API takes or gives one, so no conversion can cut it.
using KindType = decltype(std::declval<const Event&>().kind());
static_assert(std::is_same_v<KindType, std::uint16_t>);
static_assert(std::is_same_v<decltype(&kind_class), KindClass (*)(KindType) noexcept>);
static_assert(std::is_same_v<decltype(EventFields::kind), KindType>);
static_assert(std::is_same_v<decltype(EventDraft::kind), KindType>);
static_assert(std::is_same_v<decltype(Filter::kinds)::value_type::value_type, KindType>);
static_assert(std::is_same_v<decltype(RemovedEvent::kind), KindType>);
static_assert(std::is_same_v<decltype(AuditRecord::kind), KindType>);

TEST_CASE("Kind classes follow NIP-01", "[event]") {
  CHECK(kind_class(0) == KindClass::kReplaceable);
  CHECK(kind_class(1) == KindClass::kRegular);
  CHECK(kind_class(3) == KindClass::kReplaceable);
  CHECK(kind_class(4) == KindClass::kRegular);
  CHECK(kind_class(9999) == KindClass::kRegular);
  CHECK(kind_class(10000) == KindClass::kReplaceable);
  CHECK(kind_class(19999) == KindClass::kReplaceable);
  CHECK(kind_class(20000) == KindClass::kEphemeral);
  CHECK(kind_class(29999) == KindClass::kEphemeral);
  CHECK(kind_class(30000) == KindClass::kAddressable);
  CHECK(kind_class(39999) == KindClass::kAddressable);
  CHECK(kind_class(40000) == KindClass::kRegular);
  CHECK(kind_class(65535) == KindClass::kRegular);
}

TEST_CASE("Tag helpers: d tag and NIP-40 expiration", "[event]") {
  EventPtr ev = test::signed_event(test::alice(), 30000, 5, "",
                                   {{"d", "profile"}, {"expiration", "1800000000"}, {"d", "x"}});
  CHECK(ev->d_tag() == "profile");
  REQUIRE(ev->expiration().has_value());
  CHECK(*ev->expiration() == 1800000000);
  EventPtr bad = test::signed_event(test::alice(), 1, 5, "", {{"expiration", "12abc"}});
  CHECK_FALSE(bad->expiration().has_value());
  EventPtr none = test::signed_event(test::alice(), 30000, 5, "", {{"d"}});
  CHECK(none->d_tag().empty());
}

namespace {

// Whether code outside relaycore can make T's passkey with braces, or build T with one.
template <typename T>
concept PasskeyFromBraces = requires {
  static_cast<void>(typename T::Passkey{});
};
template <typename T>
concept BuildableWithBracedPasskey = requires(EventFields&& f) {
  T({}, std::move(f));
};

}  // namespace

// A host gets an Event only through create(), parse_event() or sign_event(), which check the
// fields first; nothing outside relaycore can reach the constructor.
static_assert(!std::is_default_constructible_v<Event::Passkey>);
static_assert(!PasskeyFromBraces<Event>);
static_assert(!BuildableWithBracedPasskey<Event>);
static_assert(!std::is_constructible_v<Event, EventFields&&>);
static_assert(!std::is_copy_constructible_v<Event>);

TEST_CASE("Building an event moves content and tags, never copies them", "[event]") {
  EventFields f;
  f.content = std::string(4000, 'x');
  f.tags = {{"t", std::string(500, 'y')}};
  const char* content_bytes = f.content.data();
  const Tag* tag_array = f.tags.data();
  EventPtr ev = Event::create(std::move(f)).value();
  // The strings the caller filled in are the very ones the Event holds.
  CHECK(ev->content().data() == content_bytes);
  CHECK(ev->tags().data() == tag_array);
  (void)ev->verify();
  CHECK(ev->content().data() == content_bytes);
}

TEST_CASE("Keypair rejects out-of-range secret keys", "[event]") {
  CHECK_FALSE(Keypair::from_secret_hex(std::string(64, '0')).is_ok());
  CHECK_FALSE(
      Keypair::from_secret_hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
          .is_ok());
  CHECK_FALSE(Keypair::from_secret_hex("xyz").is_ok());
  Keypair k = Keypair::generate();
  EventPtr ev = test::signed_event(k, 1, 1, "fresh");
  CHECK(ev->verify().is_ok());
}

TEST_CASE("A stored event loads as the same event, keeping the stored text as its JSON",
          "[event]") {
  EventPtr ev = test::signed_event(test::alice(), 1, 1700000000, "hello \"world\"\n\x01",
                                   {{"e", std::string(64, 'a')}, {"expiration", "1900000000"}});
  std::string text(ev->json());
  const char* const stored = text.data();
  Result<EventPtr> loaded = Event::load_stored(std::move(text));
  REQUIRE(loaded.is_ok());
  const Event& e = **loaded;
  // Taken, not copied: the event's JSON is the very buffer the storage read into.
  CHECK(e.json().data() == stored);
  CHECK(e.json() == ev->json());
  CHECK(e.content() == ev->content());
  CHECK(e.tags() == ev->tags());
  CHECK(e.created_at() == ev->created_at());
  CHECK(e.kind() == ev->kind());
  CHECK(e.expiration() == ev->expiration());
  // The offsets into the kept text are right: the commitment and id come out the same.
  CHECK(e.commitment() == ev->commitment());
  CHECK(e.verify().is_ok());
}
