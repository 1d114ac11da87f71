// Conformance: scan_keys, the keys a NIP-77 sync reconciles over. They are exactly the events
// query() returns for the same filter and request, oldest first, and the storage's own reading
// agrees with the default one built on query().
#pragma once

#include "conformance_support.hpp"

namespace relaycore::conformance {

// The keys scan_keys visits, through the storage's override or, with `base`, the default.
inline std::vector<EventKey> scanned_keys(Storage& storage, const Filter& filter,
                                          const QueryRequest& request, bool base = false,
                                          std::size_t stop_after = SIZE_MAX) {
  std::vector<EventKey> keys;
  auto visit = [&](const EventKey& k) {
    keys.push_back(k);
    return keys.size() < stop_after;
  };
  Status s = base ? storage.Storage::scan_keys(filter, request, visit)
                  : storage.scan_keys(filter, request, visit);
  REQUIRE(s.is_ok());
  return keys;
}

// What query() returns, as keys oldest first.
inline std::vector<EventKey> ascending_query_keys(Storage& storage, const Filter& filter,
                                                  const QueryRequest& request) {
  std::vector<EventKey> keys;
  REQUIRE(storage
              .query(filter, request,
                     [&](const StoredEvent& e) {
                       keys.push_back(event_key(*e.event));
                       return true;
                     })
              .is_ok());
  std::sort(keys.begin(), keys.end(), [](const EventKey& a, const EventKey& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  return keys;
}

inline void scan_keys_ascending(const Factory& make) {
  auto s = fresh(make);
  std::vector<EventPtr> events;
  for (int i = 0; i < 60; ++i) {
    const Keypair& author = i % 2 == 0 ? test::alice() : test::bob();
    std::vector<Tag> tags;
    if (i % 3 == 0) tags.push_back({"t", "x"});
    // Runs of equal created_at, so that ids order ties.
    events.push_back(
        event(author, 1000 + i / 4, "k" + std::to_string(i), std::move(tags), i % 5 == 0 ? 7 : 1));
  }
  events.push_back(event(test::alice(), 2000, "expires", {{"expiration", "1500"}}));
  write(*s, events);
  const std::uint64_t first_batch = *s->max_seq();
  write(*s, {event(test::bob(), 1005, "later commit")});

  Filter since_until;
  since_until.since = 1003;
  since_until.until = 1009;
  Filter limited = with_kinds({1});
  limited.limit = 9;
  const std::vector<Filter> filters = {Filter(),
                                       with_kinds({1}),
                                       with_authors({test::bob().pubkey()}),
                                       with_tag('t', {"x"}),
                                       since_until,
                                       limited,
                                       with_ids({events[3], events[10], events[11]})};
  QueryRequest all;
  all.max_limit = 1000;
  QueryRequest capped;
  capped.max_limit = 13;
  QueryRequest expired = all;
  expired.now = 1500;
  QueryRequest committed = all;
  committed.max_seq = first_batch;
  for (const Filter& f : filters) {
    for (const QueryRequest& r : {all, capped, expired, committed}) {
      INFO("filter " << f.to_json() << " max_limit " << r.max_limit << " now " << r.now
                     << " max_seq " << r.max_seq);
      const std::vector<EventKey> expected = ascending_query_keys(*s, f, r);
      CHECK(scanned_keys(*s, f, r) == expected);
      CHECK(scanned_keys(*s, f, r, /*base=*/true) == expected);
    }
  }
  // The newest 13 events, visited oldest first, and the visitor can stop.
  const std::vector<EventKey> newest = scanned_keys(*s, Filter(), capped);
  REQUIRE(newest.size() == 13);
  CHECK(newest.back().created_at == 2000);
  const std::vector<EventKey> three = scanned_keys(*s, Filter(), all, false, 3);
  const std::vector<EventKey> every = ascending_query_keys(*s, Filter(), all);
  REQUIRE(every.size() > 3);
  CHECK(three == std::vector<EventKey>(every.begin(), every.begin() + 3));
}

}  // namespace relaycore::conformance
