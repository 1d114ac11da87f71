// Conformance (optional): the basic NIP-50 search relaycore's storages implement, a substring
// test over the content that ignores ASCII case.
#pragma once

#include "conformance_support.hpp"

namespace relaycore::conformance {

inline Filter with_search(std::string needle) {
  Filter f;
  f.search = std::move(needle);
  return f;
}

inline void search_matches_content(const Factory& make) {
  auto s = fresh(make);
  EventPtr hello = event(test::alice(), 100, "Hello World");
  EventPtr quoted = event(test::alice(), 101, "she said \"hi\"\nand left\\back");
  EventPtr tagged = event(test::alice(), 102, "nothing here", {{"t", "world"}});
  EventPtr percent = event(test::alice(), 103, "100% sure_thing");
  EventPtr slash_n = event(test::alice(), 104, "a\\nb");  // a backslash, then the letter n
  EventPtr control = event(test::alice(), 105, "bell\x07ring");
  write(*s, {hello, quoted, tagged, percent, slash_n, control});

  CHECK(query_ids(*s, with_search("world")) == ids_of({hello}));  // tags are not searched
  CHECK(query_ids(*s, with_search("WORLD")) == ids_of({hello}));
  CHECK(query_ids(*s, with_search("\"hi\"\nand")) == ids_of({quoted}));
  CHECK(query_ids(*s, with_search("left\\back")) == ids_of({quoted}));
  CHECK(query_ids(*s, with_search("\n")) == ids_of({quoted}));  // not the "\n" in slash_n
  CHECK(query_ids(*s, with_search("0% s")) == ids_of({percent}));
  CHECK(query_ids(*s, with_search("_")) == ids_of({percent}));  // no LIKE wildcards
  CHECK(query_ids(*s, with_search("%")) == ids_of({percent}));
  CHECK(query_ids(*s, with_search("\x07R")) == ids_of({control}));
  CHECK(query_ids(*s, with_search("absent")).empty());

  Filter combined = with_search("o");
  combined.until = 100;
  CHECK(query_ids(*s, combined) == ids_of({hello}));
  CHECK(count(*s, {with_search("o")}) == 2);  // "Hello World" and "nothing here"
}

}  // namespace relaycore::conformance
