// Conformance: NIP-40 expiration, NIP-45 count, contains, scan_since, erase, and reads running
// beside writes.
#pragma once

#include <atomic>
#include <thread>

#include "conformance_support.hpp"

namespace relaycore::conformance {

inline void expired_events_hidden_and_purged(const Factory& make) {
  auto s = fresh(make);
  EventPtr soon = event(test::alice(), 100, "soon", {{"expiration", "1000"}});
  EventPtr later = event(test::alice(), 101, "later", {{"expiration", "2000"}});
  EventPtr never = event(test::alice(), 102, "never");
  write(*s, {soon, later, never});

  QueryRequest before;
  before.now = 999;
  CHECK(query_ids(*s, Filter(), before) == newest_first({soon, later, never}));
  QueryRequest at;
  at.now = 1000;  // expiration <= now is expired
  CHECK(query_ids(*s, Filter(), at) == newest_first({later, never}));
  CHECK(count(*s, {Filter()}, at) == 2);

  auto purged = s->purge_expired(1000);
  REQUIRE(purged.is_ok());
  CHECK(*purged == 1);
  CHECK_FALSE(contains(*s, soon));
  CHECK(contains(*s, later));
  CHECK(query_ids(*s, Filter(), before) == newest_first({later, never}));
  auto none = s->purge_expired(1000);
  REQUIRE(none.is_ok());
  CHECK(*none == 0);
}

inline void count_is_a_union(const Factory& make) {
  auto s = fresh(make);
  EventPtr a1 = event(test::alice(), 100, "a1", {}, 1);
  EventPtr a7 = event(test::alice(), 101, "a7", {}, 7);
  EventPtr b1 = event(test::bob(), 102, "b1", {}, 1);
  write(*s, {a1, a7, b1});
  CHECK(count(*s, {Filter()}) == 3);
  CHECK(count(*s, {with_kinds({1})}) == 2);
  // a1 matches both filters and counts once.
  CHECK(count(*s, {with_kinds({1}), with_authors({test::alice().pubkey()})}) == 3);
  CHECK(count(*s, {with_kinds({7}), with_kinds({7})}) == 1);
  CHECK(count(*s, {with_limit(1)}) == 3);  // limits are ignored
  CHECK(count(*s, {}) == 0);
  CHECK(count(*s, {with_kinds({9})}) == 0);
}

inline void contains_reports_stored_ids(const Factory& make) {
  auto s = fresh(make);
  EventPtr stored = event(test::alice(), 100, "stored");
  EventPtr absent = event(test::alice(), 101, "absent");
  write_one(*s, stored);
  CHECK(contains(*s, stored));
  CHECK_FALSE(contains(*s, absent));
}

inline void scan_since_in_seq_order(const Factory& make) {
  auto s = fresh(make);
  std::vector<EventPtr> events;
  for (std::int64_t t : {300, 100, 200, 400}) events.push_back(event(test::alice(), t, "n"));
  std::vector<WriteResult> results = write(*s, events);

  auto scan = [&](std::uint64_t after, std::size_t stop_after) {
    std::vector<std::uint64_t> seqs;
    Status status = s->scan_since(after, [&](const StoredEvent& stored) {
      seqs.push_back(stored.seq);
      return seqs.size() < stop_after;
    });
    CHECK(status.is_ok());
    return seqs;
  };
  std::vector<std::uint64_t> all = scan(0, 100);
  std::vector<std::uint64_t> expected;
  for (const WriteResult& r : results) expected.push_back(r.seq);
  CHECK(all == expected);
  CHECK(scan(results[1].seq, 100) == std::vector<std::uint64_t>{results[2].seq, results[3].seq});
  CHECK(scan(0, 2).size() == 2);
  CHECK(scan(results[3].seq, 100).empty());

  // The visited events are the ones written at those sequences.
  std::vector<EventId> ids;
  Status status = s->scan_since(0, [&](const StoredEvent& stored) {
    ids.push_back(stored.event->id());
    return true;
  });
  CHECK(status.is_ok());
  CHECK(ids == ids_of(events));
}

inline void erase_removes_outright(const Factory& make) {
  auto s = fresh(make);
  EventPtr a = event(test::alice(), 100, "a", {{"t", "x"}});
  EventPtr b = event(test::alice(), 101, "b", {{"t", "x"}});
  write(*s, {a, b});
  std::vector<EventId> ids = {a->id(), EventId{}};
  auto erased = s->erase(ids);
  REQUIRE(erased.is_ok());
  CHECK(*erased == 1);
  CHECK_FALSE(contains(*s, a));
  CHECK(query_ids(*s, with_tag('t', {"x"})) == ids_of({b}));
  CHECK(count(*s, {Filter()}) == 1);
}

// Reads from several threads while one thread writes: every call succeeds, every result is in
// order, and what a reader sees only grows. Catch2 is not thread-safe, so threads only count.
inline void concurrent_reads_during_writes(const Factory& make) {
  auto s = fresh(make);
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      std::uint64_t last_count = 0;
      while (!done.load()) {
        std::vector<std::int64_t> times;
        Status q = s->query(with_kinds({1}), QueryRequest(), [&](const StoredEvent& stored) {
          times.push_back(stored.event->created_at());
          return true;
        });
        auto n = s->count({with_kinds({1})}, QueryRequest());
        auto seq = s->max_seq();
        if (!q.is_ok() || !n.is_ok() || !seq.is_ok() || *n < last_count ||
            !std::is_sorted(times.rbegin(), times.rend())) {
          ++failures;
        }
        if (n.is_ok()) last_count = *n;
        ++reads;
      }
    });
  }
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<EventPtr> events;
    for (int i = 0; i < 10; ++i) {
      events.push_back(event(test::alice(), 1000 + (batch * 37 + i * 11) % 200,
                             std::to_string(batch) + "/" + std::to_string(i)));
    }
    std::vector<WriteResult> results;
    if (!s->write_batch(events, results).is_ok()) ++failures;
  }
  done = true;
  for (std::thread& t : readers) t.join();
  CHECK(failures.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(count(*s, {Filter()}) == 200);
}

}  // namespace relaycore::conformance
