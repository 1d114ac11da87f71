// Table-driven filter tests: every field alone, then AND across fields and OR within them.
#include <catch2/catch.hpp>

#include "relaycore/filter.hpp"
#include "relaycore/hex.hpp"
#include "test_util.hpp"

using namespace relaycore;

namespace {

struct Fixture {
  EventPtr a1 = test::signed_event(test::alice(), 1, 1000, "a1", {{"t", "nostr"}, {"p", "x"}});
  EventPtr a7 = test::signed_event(test::alice(), 7, 2000, "a7", {{"e", "abc"}});
  EventPtr b1 = test::signed_event(test::bob(), 1, 3000, "b1", {{"t", "cpp"}, {"T", "up"}});
  EventPtr b30 = test::signed_event(test::bob(), 30023, 4000, "b30", {{"d", "post"}});
  std::vector<EventPtr> all() const { return {a1, a7, b1, b30}; }
};

std::string matched(const Fixture& fx, const std::string& filter_json) {
  Result<Filter> f = parse_filter(filter_json);
  INFO(filter_json << " -> " << (f ? std::string("ok") : f.error().message()));
  REQUIRE(f.is_ok());
  std::string names;
  for (const EventPtr& e : fx.all()) {
    if (f->matches(*e)) names += (names.empty() ? "" : ",") + e->content();
  }
  return names;
}

}  // namespace

TEST_CASE("Filter fields and their AND/OR semantics", "[filter]") {
  Fixture fx;
  const std::string alice = to_hex(test::alice().pubkey());
  const std::string bob = to_hex(test::bob().pubkey());
  const std::string a1 = std::string(fx.a1->id_hex());
  const std::string b1 = std::string(fx.b1->id_hex());
  const std::string nobody = std::string(64, '0');

  struct Row {
    std::string filter;
    std::string expected;
  };
  const std::vector<Row> rows = {
      {"{}", "a1,a7,b1,b30"},
      {"{\"ids\":[\"" + a1 + "\"]}", "a1"},
      {"{\"ids\":[\"" + a1 + "\",\"" + b1 + "\"]}", "a1,b1"},
      {"{\"ids\":[\"" + nobody + "\"]}", ""},
      {"{\"ids\":[]}", ""},
      {"{\"authors\":[\"" + alice + "\"]}", "a1,a7"},
      {"{\"authors\":[\"" + alice + "\",\"" + bob + "\"]}", "a1,a7,b1,b30"},
      {"{\"kinds\":[1]}", "a1,b1"},
      {"{\"kinds\":[7,30023]}", "a7,b30"},
      {"{\"kinds\":[2]}", ""},
      {"{\"since\":2000}", "a7,b1,b30"},
      {"{\"until\":2000}", "a1,a7"},
      {"{\"since\":2000,\"until\":3000}", "a7,b1"},
      {"{\"since\":3001,\"until\":3000}", ""},
      {"{\"#t\":[\"nostr\"]}", "a1"},
      {"{\"#t\":[\"nostr\",\"cpp\"]}", "a1,b1"},
      {"{\"#e\":[\"abc\"]}", "a7"},
      {"{\"#T\":[\"up\"]}", "b1"},
      {"{\"#d\":[\"post\"]}", "b30"},
      {"{\"#t\":[\"nostr\"],\"#p\":[\"x\"]}", "a1"},
      {"{\"#t\":[\"nostr\"],\"#p\":[\"y\"]}", ""},
      {"{\"authors\":[\"" + alice + "\"],\"kinds\":[1]}", "a1"},
      {"{\"authors\":[\"" + bob + "\"],\"kinds\":[1],\"#t\":[\"cpp\"]}", "b1"},
      {"{\"authors\":[\"" + bob + "\"],\"kinds\":[7]}", ""},
      {"{\"kinds\":[1],\"since\":2000}", "b1"},
      {"{\"ids\":[\"" + a1 + "\"],\"authors\":[\"" + bob + "\"]}", ""},
      {"{\"limit\":1}", "a1,a7,b1,b30"},
      // NIP-50: every word of the search in the content, case folded; key:value ignored.
      {"{\"search\":\"anything\"}", ""},
      {"{\"search\":\"A7\"}", "a7"},
      {"{\"search\":\"b1 language:en\"}", "b1"},
      {"{\"search\":\"b1 a1\"}", ""},
      {"{\"kinds\":[1],\"search\":\"a7\"}", ""},
      {"{\"search\":\"\\\"(\"}", ""},
  };
  for (const Row& row : rows) {
    INFO(row.filter);
    CHECK(matched(fx, row.filter) == row.expected);
  }
}

TEST_CASE("Filters in one REQ are ORed", "[filter]") {
  Fixture fx;
  std::vector<Filter> filters = {parse_filter("{\"kinds\":[7]}").value(),
                                 parse_filter("{\"#d\":[\"post\"]}").value()};
  CHECK_FALSE(matches_any(filters, *fx.a1));
  CHECK(matches_any(filters, *fx.a7));
  CHECK(matches_any(filters, *fx.b30));
  CHECK_FALSE(matches_any({}, *fx.a1));
}

TEST_CASE("Filter keeps limit and search, and serialises back", "[filter]") {
  Filter f = parse_filter("{\"limit\":10,\"search\":\"best relay\",\"kinds\":[3,1,1]}").value();
  REQUIRE(f.limit.has_value());
  CHECK(*f.limit == 10);
  CHECK(*f.search == "best relay");
  CHECK(*f.kinds == std::vector<std::uint16_t>{1, 3});
  CHECK(f.to_json() == "{\"kinds\":[1,3],\"limit\":10,\"search\":\"best relay\"}");
  Filter round = parse_filter(f.to_json()).value();
  CHECK(round.to_json() == f.to_json());
  Filter big = parse_filter("{\"limit\":99999999999}").value();
  CHECK(*big.limit == UINT32_MAX);
}

TEST_CASE("Filter value counts obey the configured limit", "[filter]") {
  Limits limits;
  limits.max_filter_values = 2;
  CHECK(parse_filter("{\"kinds\":[1,2]}", limits).is_ok());
  Result<Filter> f = parse_filter("{\"kinds\":[1,2,3]}", limits);
  REQUIRE_FALSE(f.is_ok());
  CHECK(f.error().message() == "invalid: filter \"kinds\" has too many values (3, max 2)");
}

TEST_CASE("Filter kinds span the 16 bits of a kind and never wrap past them", "[filter]") {
  EventPtr widest = test::signed_event(test::alice(), 65535, 1000, "");
  EventPtr one = test::signed_event(test::alice(), 1, 1000, "");
  Filter f = parse_filter("{\"kinds\":[65535]}").value();
  CHECK(*f.kinds == std::vector<std::uint16_t>{65535});
  CHECK(f.matches(*widest));
  CHECK_FALSE(f.matches(*one));
  // 65537 would be kind 1 if it were cut to 16 bits; it is refused instead.
  for (const char* kinds : {"[65536]", "[1,65537]", "[4294967297]", "[-1]"}) {
    Result<Filter> bad = parse_filter(std::string("{\"kinds\":") + kinds + "}");
    REQUIRE_FALSE(bad.is_ok());
    CHECK(bad.error().message() == "invalid: filter \"kinds\" values must be between 0 and 65535");
  }
}
