// Conformance: a query resumed after a position (QueryRequest::after) continues exactly where
// an earlier one stopped, whatever the filter, and its limit counts from there. An event that
// matches a tag list through two of its values comes once, on one page.
#pragma once

#include "conformance_support.hpp"

namespace relaycore::conformance {

inline void resumes_after_a_position(const Factory& make) {
  auto s = fresh(make);
  std::vector<EventPtr> events;
  // Ties on created_at, so resuming inside a tie group must order by id. Every fifth event
  // carries both x and y.
  for (int i = 0; i < 40; ++i) {
    std::vector<Tag> tags = {{"t", i % 3 ? "x" : "y"}};
    if (i % 5 == 0) tags.push_back({"t", i % 3 ? "y" : "x"});
    events.push_back(event(i % 2 ? test::alice() : test::bob(), 1000 + i / 4,
                           "r" + std::to_string(i), std::move(tags), i % 7 == 0 ? 7 : 1));
  }
  write(*s, events);
  for (const char* json : {R"({})", R"({"authors":[")", R"({"#t":["x"]})", R"({"kinds":[1]})",
                           R"({"#t":["x","y"]})", R"({"#t":["x","y","z"],"kinds":[1]})"}) {
    std::string text = json;
    if (text == R"({"authors":[")") text += to_hex(test::alice().pubkey()) + "\"]}";
    Filter f = parse_filter(text).value();
    INFO(text);
    const std::vector<StoredEvent> all = query(*s, f);
    REQUIRE(all.size() > 8);
    // Page through in steps of 3 (a step of 3 ends inside a tie group of 4).
    std::vector<EventId> paged;
    QueryRequest request;
    request.max_limit = 3;
    for (;;) {
      const std::vector<StoredEvent> page = query(*s, f, request);
      for (const StoredEvent& e : page) paged.push_back(e.event->id());
      if (page.size() < 3) break;
      request.after = event_key(*page.back().event);
    }
    std::vector<EventId> expected;
    for (const StoredEvent& e : all) expected.push_back(e.event->id());
    CHECK(expected == expected_ids(events, f));
    CHECK(paged == expected);
  }
  // An id filter resumes the same way.
  const Filter by_id = parse_filter(R"({"ids":[")" + std::string(events[5]->id_hex()) + R"(",")" +
                                    std::string(events[6]->id_hex()) + R"(",")" +
                                    std::string(events[7]->id_hex()) + R"("]})")
                           .value();
  const std::vector<StoredEvent> ids = query(*s, by_id);
  REQUIRE(ids.size() == 3);
  QueryRequest after_first;
  after_first.after = event_key(*ids[0].event);
  const std::vector<StoredEvent> rest = query(*s, by_id, after_first);
  REQUIRE(rest.size() == 2);
  CHECK(rest[0].event->id() == ids[1].event->id());
  CHECK(rest[1].event->id() == ids[2].event->id());
}

}  // namespace relaycore::conformance
