// Conformance: storing, duplicates, result order, limits and every NIP-01 filter field.
#pragma once

#include "conformance_support.hpp"

namespace relaycore::conformance {

// What goes in comes back byte for byte: the stored form is the canonical JSON.
inline void store_and_query_back(const Factory& make) {
  auto s = fresh(make);
  CHECK(write(*s, {}).empty());  // an empty batch is fine and does nothing
  CHECK(max_seq(*s) == 0);
  std::vector<EventPtr> events = {
      event(test::alice(), 1000, "plain"),
      event(test::alice(), 1001,
            "quote \" backslash \\ newline \n tab \t ctl \x01 caf\xc3\xa9 \xf0\x9f\x98\x80",
            {{"e", std::string(64, 'a'), "wss://relay.example"}, {"t", "x"}, {"alt", "long tag"}}),
      event(test::bob(), 1002, "", {{"p", to_hex(test::alice().pubkey())}}, 7),
  };
  std::vector<WriteResult> results = write(*s, events);
  for (const WriteResult& r : results) {
    CHECK(r.outcome == WriteOutcome::kStored);
    CHECK(r.status.is_ok());
    CHECK(r.seq > 0);
    CHECK(r.removed.empty());
  }
  std::vector<StoredEvent> got = query(*s, Filter());
  REQUIRE(got.size() == events.size());
  for (const StoredEvent& stored : got) {
    auto it = std::find_if(events.begin(), events.end(),
                           [&](const EventPtr& e) { return e->id() == stored.event->id(); });
    REQUIRE(it != events.end());
    CHECK(stored.event->json() == (*it)->json());
    CHECK(stored.event->tags() == (*it)->tags());
    CHECK(stored.event->content() == (*it)->content());
    CHECK(stored.seq == results[static_cast<std::size_t>(it - events.begin())].seq);
  }
}

inline void duplicate_is_reported(const Factory& make) {
  auto s = fresh(make);
  EventPtr e = event(test::alice(), 1000, "once");
  CHECK(write_one(*s, e).outcome == WriteOutcome::kStored);
  WriteResult again = write_one(*s, e);
  CHECK(again.outcome == WriteOutcome::kDuplicate);
  CHECK(again.seq == 0);
  // The same id twice in one batch: the second sees the first.
  EventPtr f = event(test::alice(), 1001, "twice");
  std::vector<WriteResult> both = write(*s, {f, f});
  CHECK(both[0].outcome == WriteOutcome::kStored);
  CHECK(both[1].outcome == WriteOutcome::kDuplicate);
  CHECK(query(*s, Filter()).size() == 2);
}

inline void orders_newest_first_with_id_tiebreak(const Factory& make) {
  auto s = fresh(make);
  std::vector<EventPtr> events;
  for (std::int64_t t : {100, 300, 200, 250, 250, 250, 50}) {
    events.push_back(event(test::alice(), t, "n" + std::to_string(events.size())));
  }
  write(*s, events);
  CHECK(query_ids(*s, Filter()) == newest_first(events));
}

// Many events share one created_at and the limit cuts into them: the query returns the lowest
// ids of the group in ascending order, for every shape a storage may serve from an index
// (author + kind, author, kind, one tag value, no condition) and for lists of several authors
// or kinds.
inline void limit_within_one_created_at(const Factory& make) {
  auto s = fresh(make);
  std::vector<EventPtr> events;
  for (int i = 0; i < 120; ++i) {
    const Keypair& author = i % 2 == 0 ? test::alice() : test::bob();
    const std::uint16_t kind = i % 3 == 0 ? 7 : 1;
    std::vector<Tag> tags;
    if (i % 4 != 0) tags.push_back({"t", "tie"});
    events.push_back(event(author, 1000, "n" + std::to_string(i), std::move(tags), kind));
  }
  // Around the group, one newer event (served first) and one older (never reached).
  events.push_back(event(test::alice(), 1001, "newer", {{"t", "tie"}}));
  events.push_back(event(test::alice(), 999, "older", {{"t", "tie"}}));
  write(*s, events);

  const Pubkey alice = test::alice().pubkey();
  const Pubkey bob = test::bob().pubkey();
  Filter author_kind = with_kinds({1});
  author_kind.authors = std::vector<Pubkey>{alice};
  Filter tag_kind = with_tag('t', {"tie"});
  tag_kind.kinds = std::vector<std::uint16_t>{1};
  Filter authors_kind = with_kinds({1});
  authors_kind.authors = sorted(std::vector<Pubkey>{alice, bob});
  Filter group_only = with_kinds({1, 7});
  group_only.since = 1000;
  group_only.until = 1000;
  for (Filter f :
       {author_kind, with_authors({bob}), with_kinds({1}), with_tag('t', {"tie"}), Filter(),
        tag_kind, authors_kind, with_kinds({1, 7}), with_authors({alice, bob}), group_only}) {
    REQUIRE(expected_ids(events, f).size() > 21);  // every limit below cuts into the group
    for (std::uint32_t limit : {1u, 7u, 20u}) {
      f.limit = limit;
      INFO("filter " << f.to_json());
      CHECK(query_ids(*s, f) == expected_ids(events, f));
    }
  }
}

inline void limit_and_max_limit_clamp(const Factory& make) {
  auto s = fresh(make);
  std::vector<EventPtr> events;
  for (int i = 0; i < 10; ++i) events.push_back(event(test::alice(), 1000 + i, "n"));
  write(*s, events);
  std::vector<EventId> all = newest_first(events);
  auto first = [&](std::size_t n) { return std::vector<EventId>(all.begin(), all.begin() + n); };

  CHECK(query_ids(*s, with_limit(3)) == first(3));
  QueryRequest small;
  small.max_limit = 4;
  CHECK(query_ids(*s, Filter(), small) == first(4));  // no limit: max_limit applies
  QueryRequest ceiling;
  ceiling.max_limit = 5;
  CHECK(query_ids(*s, with_limit(8), ceiling) == first(5));  // limit above the ceiling
  CHECK(query_ids(*s, with_limit(20)).size() == 10);
  CHECK(query_ids(*s, with_limit(0)).empty());

  // The visitor stops the scan by returning false.
  int seen = 0;
  Status status =
      s->query(Filter(), QueryRequest(), [&](const StoredEvent&) { return ++seen < 2; });
  CHECK(status.is_ok());
  CHECK(seen == 2);
}

inline void filter_fields_and_or(const Factory& make) {
  auto s = fresh(make);
  EventPtr a1 = event(test::alice(), 100, "a1", {}, 1);
  EventPtr a7 = event(test::alice(), 101, "a7", {}, 7);
  EventPtr b1 = event(test::bob(), 102, "b1", {}, 1);
  EventPtr b30 = event(test::bob(), 103, "b30", {}, 30);
  write(*s, {a1, a7, b1, b30});

  CHECK(query_ids(*s, with_ids({a1, b30})) == newest_first({a1, b30}));
  CHECK(query_ids(*s, with_authors({test::alice().pubkey()})) == newest_first({a1, a7}));
  CHECK(query_ids(*s, with_authors({test::alice().pubkey(), test::bob().pubkey()})).size() == 4);
  CHECK(query_ids(*s, with_kinds({1})) == newest_first({a1, b1}));
  CHECK(query_ids(*s, with_kinds({7, 30})) == newest_first({a7, b30}));

  Filter and_filter = with_kinds({1});
  and_filter.authors = std::vector<Pubkey>{test::bob().pubkey()};
  CHECK(query_ids(*s, and_filter) == ids_of({b1}));

  Filter ids_and_kind = with_ids({a1, a7, b1});
  ids_and_kind.kinds = std::vector<std::uint16_t>{7};
  CHECK(query_ids(*s, ids_and_kind) == ids_of({a7}));

  Filter nothing = with_kinds({2});
  CHECK(query_ids(*s, nothing).empty());
  Filter unknown_id;
  unknown_id.ids = std::vector<EventId>{EventId{}};
  CHECK(query_ids(*s, unknown_id).empty());
}

inline void tag_conditions(const Factory& make) {
  auto s = fresh(make);
  const std::string x(64, 'a');
  const std::string y(64, 'b');
  EventPtr ex = event(test::alice(), 100, "ex", {{"e", x}, {"t", "nostr"}});
  EventPtr ey = event(test::alice(), 101, "ey", {{"e", y}, {"t", "other"}});
  EventPtr second_value = event(test::alice(), 102, "sv", {{"t", "first", "second"}});
  EventPtr long_name = event(test::alice(), 103, "ln", {{"tt", "nostr"}});
  EventPtr upper = event(test::alice(), 104, "up", {{"T", "Nostr"}});
  EventPtr repeated = event(test::alice(), 105, "rp", {{"t", "nostr"}, {"t", "nostr"}});
  write(*s, {ex, ey, second_value, long_name, upper, repeated});

  CHECK(query_ids(*s, with_tag('e', {x})) == ids_of({ex}));
  CHECK(query_ids(*s, with_tag('e', {x, y})) == newest_first({ex, ey}));  // values ORed
  CHECK(query_ids(*s, with_tag('t', {"nostr"})) == newest_first({ex, repeated}));
  CHECK(query_ids(*s, with_tag('t', {"second"})).empty());  // only the first value counts
  CHECK(query_ids(*s, with_tag('t', {"first"})) == ids_of({second_value}));
  CHECK(query_ids(*s, with_tag('T', {"Nostr"})) == ids_of({upper}));
  CHECK(query_ids(*s, with_tag('T', {"nostr"})).empty());  // values are case-sensitive

  Filter both = with_tag('e', {x, y});  // conditions ANDed
  both.tags.push_back(TagCondition{'t', {"other"}});
  CHECK(query_ids(*s, both) == ids_of({ey}));

  Filter tag_and_time = with_tag('t', {"nostr"});
  tag_and_time.until = 104;
  CHECK(query_ids(*s, tag_and_time) == ids_of({ex}));
}

inline void since_until_inclusive(const Factory& make) {
  auto s = fresh(make);
  std::vector<EventPtr> events;
  for (std::int64_t t = 100; t <= 104; ++t) events.push_back(event(test::alice(), t, "n"));
  write(*s, events);
  Filter f;
  f.since = 101;
  f.until = 103;
  CHECK(query_ids(*s, f) == newest_first({events[1], events[2], events[3]}));
  Filter exact;
  exact.since = 102;
  exact.until = 102;
  CHECK(query_ids(*s, exact) == ids_of({events[2]}));
  Filter since_only;
  since_only.since = 104;
  CHECK(query_ids(*s, since_only) == ids_of({events[4]}));
  Filter until_only;
  until_only.until = 100;
  CHECK(query_ids(*s, until_only) == ids_of({events[0]}));
}

// A query at sequence S sees exactly what was committed at or before S.
inline void max_seq_bounds_queries(const Factory& make) {
  auto s = fresh(make);
  EventPtr early = event(test::alice(), 200, "early");
  write_one(*s, early);
  const std::uint64_t at = max_seq(*s);
  EventPtr late = event(test::alice(), 100, "late");  // older created_at, later commit
  write_one(*s, late);

  QueryRequest bounded;
  bounded.max_seq = at;
  CHECK(query_ids(*s, Filter(), bounded) == ids_of({early}));
  CHECK(count(*s, {Filter()}, bounded) == 1);
  CHECK(query_ids(*s, Filter()).size() == 2);
  QueryRequest before_all;
  before_all.max_seq = 0;
  CHECK(query_ids(*s, Filter(), before_all).empty());
}

inline void seq_monotonic_across_batches(const Factory& make) {
  auto s = fresh(make);
  CHECK(max_seq(*s) == 0);
  std::uint64_t last = 0;
  for (int batch = 0; batch < 3; ++batch) {
    std::vector<EventPtr> events;
    for (int i = 0; i < 3; ++i) {
      events.push_back(event(test::alice(), 1000 - batch * 10 - i, std::to_string(batch * 3 + i)));
    }
    for (const WriteResult& r : write(*s, events)) {
      CHECK(r.seq > last);
      last = r.seq;
    }
    CHECK(max_seq(*s) == last);
  }
  // Removing the newest event never lets a sequence come back.
  std::vector<StoredEvent> all = query(*s, Filter());
  auto newest = std::max_element(all.begin(), all.end(),
                                 [](const auto& a, const auto& b) { return a.seq < b.seq; });
  std::vector<EventId> gone = {newest->event->id()};
  REQUIRE(s->erase(gone).is_ok());
  CHECK(max_seq(*s) == last);
  WriteResult next = write_one(*s, event(test::alice(), 5, "after erase"));
  CHECK(next.seq > last);
}

}  // namespace relaycore::conformance
