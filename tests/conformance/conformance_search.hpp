// Conformance (optional): NIP-50 search as relaycore's storages implement it (docs/search.md).
// Content is split into words (Unicode letters and digits, case and Latin diacritics folded);
// an event matches when its content holds every word of the query; results come best match
// first, then newest first, with the limit applied after ranking. The query is words only: no
// syntax a client sends can change what it means or make the query fail.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "conformance_support.hpp"

namespace relaycore::conformance {

inline Filter with_search(std::string query) {
  Filter f;
  f.search = std::move(query);
  return f;
}

inline void search_matches_words(const Factory& make) {
  auto s = fresh(make);
  // Matches of equal word counts, so that the ranking leaves them newest first.
  EventPtr hello = event(test::alice(), 100, "Hello big World");
  EventPtr cafe = event(test::alice(), 101, "un Café crème, s'il vous plaît");
  EventPtr tagged = event(test::alice(), 102, "nothing here", {{"t", "world"}});
  EventPtr relays = event(test::alice(), 103, "relays and worlds");
  EventPtr link = event(test::alice(), 104, "see https://example.com/path now");
  EventPtr both = event(test::alice(), 105, "hello, brave world!");
  write(*s, {hello, cafe, tagged, relays, link, both});

  CHECK(query_ids(*s, with_search("world")) == ids_of({both, hello}));  // tags are not searched
  CHECK(query_ids(*s, with_search("WORLD")) == ids_of({both, hello}));
  CHECK(query_ids(*s, with_search("wor")).empty());                    // words, not substrings
  CHECK(query_ids(*s, with_search("brave world")) == ids_of({both}));  // every word
  CHECK(query_ids(*s, with_search("world brave")) == ids_of({both}));
  CHECK(query_ids(*s, with_search("cafe creme")) == ids_of({cafe}));  // diacritics folded
  CHECK(query_ids(*s, with_search("CAFÉ")) == ids_of({cafe}));
  CHECK(query_ids(*s, with_search("plait")) == ids_of({cafe}));
  CHECK(query_ids(*s, with_search("example")) == ids_of({link}));
  CHECK(query_ids(*s, with_search("https://example.com")) == ids_of({link}));
  CHECK(query_ids(*s, with_search("absent")).empty());

  // Unsupported key:value extensions are ignored.
  CHECK(query_ids(*s, with_search("brave language:en")) == ids_of({both}));
  CHECK(query_ids(*s, with_search("include:spam world nsfw:false")) == ids_of({both, hello}));

  CHECK(count(*s, {with_search("world")}) == 2);
  CHECK(count(*s, {with_search("hello"), with_search("cafe")}) == 3);
  CHECK(count(*s, {with_search("absent")}) == 0);
}

inline void search_ranks_by_relevance(const Factory& make) {
  auto s = fresh(make);
  // Five words each, so that only how often "nostr" occurs tells them apart.
  EventPtr three = event(test::alice(), 100, "nostr nostr nostr alpha beta");
  EventPtr one = event(test::alice(), 103, "nostr gamma delta epsilon zeta");
  EventPtr two = event(test::alice(), 101, "nostr nostr eta theta iota");
  EventPtr other = event(test::alice(), 104, "kappa lambda mu nu xi");
  // As good as `one` and newer: ties go newest first.
  EventPtr one_newer = event(test::bob(), 105, "omicron nostr pi rho sigma");
  write(*s, {three, one, two, other, one_newer});

  CHECK(query_ids(*s, with_search("nostr")) == ids_of({three, two, one_newer, one}));

  // The limit is applied after ranking: the best, not the newest.
  Filter limited = with_search("nostr");
  limited.limit = 2;
  CHECK(query_ids(*s, limited) == ids_of({three, two}));
  QueryRequest small;
  small.max_limit = 1;
  CHECK(query_ids(*s, with_search("nostr"), small) == ids_of({three}));

  // Equal scores and equal created_at: lowest id first, as NIP-01 orders.
  auto s2 = fresh(make);
  EventPtr x = event(test::alice(), 200, "same words here");
  EventPtr y = event(test::bob(), 200, "same words here");
  write(*s2, {x, y});
  CHECK(query_ids(*s2, with_search("words")) == newest_first({x, y}));
}

inline void search_combines_with_other_fields(const Factory& make) {
  auto s = fresh(make);
  EventPtr a1 = event(test::alice(), 100, "zap the relay", {{"t", "x"}}, 1);
  EventPtr a7 = event(test::alice(), 101, "zap", {}, 7);
  EventPtr b1 = event(test::bob(), 102, "zap zap", {{"t", "x"}}, 1);
  EventPtr b1_other = event(test::bob(), 103, "nothing", {{"t", "x"}}, 1);
  write(*s, {a1, a7, b1, b1_other});

  Filter kinds = with_search("zap");
  kinds.kinds = std::vector<std::uint16_t>{1};
  CHECK(query_ids(*s, kinds) == ids_of({b1, a1}));

  Filter authors = with_search("zap");
  authors.authors = std::vector<Pubkey>{test::alice().pubkey()};
  CHECK(query_ids(*s, authors) == ids_of({a7, a1}));  // "zap" alone scores above "zap the relay"

  Filter both = authors;
  both.kinds = std::vector<std::uint16_t>{1};
  CHECK(query_ids(*s, both) == ids_of({a1}));

  Filter tag = with_search("zap");
  tag.tags.push_back(TagCondition{'t', {"x"}});
  CHECK(query_ids(*s, tag) == ids_of({b1, a1}));

  Filter time = with_search("zap");
  time.since = 101;
  time.until = 101;
  CHECK(query_ids(*s, time) == ids_of({a7}));

  Filter ids = with_search("relay");
  ids.ids = std::vector<EventId>{a1->id(), b1->id()};
  std::sort(ids.ids->begin(), ids.ids->end());
  CHECK(query_ids(*s, ids) == ids_of({a1}));

  CHECK(count(*s, {kinds}) == 2);
  CHECK(count(*s, {authors, tag}) == 3);
}

inline void search_forgets_removed_events(const Factory& make) {
  auto s = fresh(make);
  EventPtr deleted = event(test::alice(), 100, "ephemeral thought");
  EventPtr kept = event(test::alice(), 101, "lasting calm thought");
  EventPtr expiring = event(test::alice(), 102, "fleeting thought", {{"expiration", "1000"}});
  EventPtr erased = event(test::bob(), 103, "regretted thought");
  EventPtr profile_old = event(test::bob(), 104, "old profile thought", {}, 0);
  write(*s, {deleted, kept, expiring, erased, profile_old});
  CHECK(count(*s, {with_search("thought")}) == 5);

  // NIP-09 deletion.
  write(*s, {event(test::alice(), 200, "", {{"e", hex_id(deleted)}}, 5)});
  CHECK(query_ids(*s, with_search("ephemeral")).empty());
  // Replacement: the old version's words go with it.
  EventPtr profile_new = event(test::bob(), 201, "new profile thought", {}, 0);
  write(*s, {profile_new});
  CHECK(query_ids(*s, with_search("old")).empty());
  CHECK(query_ids(*s, with_search("profile")) == ids_of({profile_new}));
  // Expiration, hidden and then purged.
  QueryRequest later;
  later.now = 1000;
  CHECK(query_ids(*s, with_search("fleeting"), later).empty());
  REQUIRE(s->purge_expired(1000).is_ok());
  CHECK(query_ids(*s, with_search("fleeting")).empty());
  // The operator's erase.
  const std::vector<EventId> erase_ids{erased->id()};
  REQUIRE(s->erase(erase_ids).is_ok());
  CHECK(query_ids(*s, with_search("regretted")).empty());

  CHECK(query_ids(*s, with_search("thought")) == newest_first({profile_new, kept}));
  // A new event with the words of a removed one is found.
  EventPtr again = event(test::alice(), 300, "ephemeral again");
  write(*s, {again});
  CHECK(query_ids(*s, with_search("ephemeral")) == ids_of({again}));
}

// What a query string means is its words; nothing in it is syntax, and no string fails.
inline void search_reads_hostile_queries_as_words(const Factory& make) {
  auto s = fresh(make);
  // Six words each, alpha and beta adjacent in both, so that equal matches rank newest first.
  EventPtr plain = event(test::alice(), 100, "alpha beta gamma delta epsilon zeta");
  EventPtr operators = event(test::alice(), 101, "alpha beta and or not near");
  write(*s, {plain, operators});
  const std::vector<EventId> both = ids_of({operators, plain});
  const std::vector<EventId> none;
  const std::vector<EventId> ops = ids_of({operators});

  struct Case {
    std::string query;
    const std::vector<EventId>& expected;
  };
  const Case cases[] = {
      {"alpha", both},
      {"\"alpha", both},  // an unbalanced quote
      {"alpha\"", both},
      {"\"alpha beta\"", both},  // quotes make no phrase
      {"\"beta alpha\"", both},
      {"alpha*", both},  // no prefix search
      {"alph*", none},
      {"alpha AND beta", ops},   // AND is a word
      {"alpha OR gamma", none},  // so is OR
      {"NOT gamma", none},
      {"alpha NOT gamma", none},
      {"NEAR(alpha beta)", ops},
      {"NEAR(alpha beta, 1)", none},  // "1" is a word
      {"(alpha)", both},
      {"((alpha", both},
      {"alpha)", both},
      {"content:alpha", none},     // a column filter is a key:value, ignored
      {"{content}: alpha", none},  // content is a word
      {"- alpha", both},
      {"-alpha +beta", both},
      {"alpha^beta", both},
      {"alpha:", both},  // not a key:value
      {":alpha", both},
      {"", none},
      {" \t\n", none},
      {"\"", none},
      {"***", none},
      {"\"\"\"", none},
      {"()", none},
      {"!@#$%^&*()_+-=[]{};',./<>?\\|`~", none},
      {"'; DROP TABLE events; --", none},
      {"alpha' OR '1'='1", none},
      {"\\x00 alpha", none},
      {std::string("alpha\0beta", 10), both},
  };
  for (const Case& c : cases) {
    INFO("query: " << c.query);
    CHECK(query_ids(*s, with_search(c.query)) == c.expected);
    CHECK(count(*s, {with_search(c.query)}) == c.expected.size());
  }
  CHECK(query_ids(*s, Filter()).size() == 2);  // the store is intact
}

}  // namespace relaycore::conformance
