// Conformance: NIP-40 expiration, NIP-45 count, contains, scan_since, erase, and reads running
// beside writes.
#pragma once

#include <atomic>
#include <limits>
#include <thread>

#include "conformance_support.hpp"

namespace relaycore::conformance {

inline void expired_events_hidden_and_purged(const Factory& make) {
  auto s = fresh(make);
  EventPtr soon = event(test::alice(), 100, "soon", {{"expiration", "1000"}});
  EventPtr later = event(test::alice(), 101, "later", {{"expiration", "2000"}});
  EventPtr never = event(test::alice(), 102, "never");
  EventPtr sooner = event(test::bob(), 103, "sooner", {{"expiration", "900"}}, 7);
  std::vector<WriteResult> written = write(*s, {soon, later, never, sooner});

  QueryRequest before;
  before.now = 899;
  CHECK(query_ids(*s, Filter(), before) == newest_first({soon, later, never, sooner}));
  QueryRequest at;
  at.now = 1000;  // expiration <= now is expired
  CHECK(query_ids(*s, Filter(), at) == newest_first({later, never}));
  CHECK(count(*s, {Filter()}, at) == 2);

  // The purge reports what it removed, in sequence order, so that each removal can be audited.
  auto purged = s->purge_expired(1000);
  REQUIRE(purged.is_ok());
  REQUIRE(purged->size() == 2);
  CHECK(removed_ids(*purged) == ids_of({soon, sooner}));
  CHECK(all_for(*purged, RemovalReason::kExpired));
  CHECK((*purged)[0].seq == written[0].seq);
  CHECK((*purged)[0].kind == 1);
  CHECK((*purged)[0].pubkey == test::alice().pubkey());
  CHECK((*purged)[1].seq == written[3].seq);
  CHECK((*purged)[1].kind == 7);
  CHECK((*purged)[1].pubkey == test::bob().pubkey());
  CHECK_FALSE(contains(*s, soon));
  CHECK(contains(*s, later));
  CHECK(query_ids(*s, Filter(), before) == newest_first({later, never}));
  auto none = s->purge_expired(1000);
  REQUIRE(none.is_ok());
  CHECK(none->empty());
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
  EventPtr c = event(test::bob(), 102, "c", {}, 0);
  std::vector<WriteResult> written = write(*s, {a, b, c});
  // Reported in the order asked, ids not stored skipped.
  std::vector<EventId> ids = {c->id(), EventId{}, a->id()};
  auto erased = s->erase(ids);
  REQUIRE(erased.is_ok());
  REQUIRE(erased->size() == 2);
  CHECK(removed_ids(*erased) == ids_of({c, a}));
  CHECK(all_for(*erased, RemovalReason::kErased));
  CHECK((*erased)[0].seq == written[2].seq);
  CHECK((*erased)[0].kind == 0);
  CHECK((*erased)[0].pubkey == test::bob().pubkey());
  CHECK((*erased)[1].seq == written[0].seq);
  CHECK((*erased)[1].kind == 1);
  CHECK((*erased)[1].pubkey == test::alice().pubkey());
  CHECK_FALSE(contains(*s, a));
  CHECK_FALSE(contains(*s, c));
  CHECK(query_ids(*s, with_tag('t', {"x"})) == ids_of({b}));
  CHECK(count(*s, {Filter()}) == 1);
  auto again = s->erase(ids);
  REQUIRE(again.is_ok());
  CHECK(again->empty());
  // No tombstone: unlike a NIP-09 deletion, an erased event may be published again.
  CHECK(write_one(*s, a).outcome == WriteOutcome::kStored);
}

// What size_bytes should say: the stored events' JSON, summed, expired ones included.
inline std::uint64_t stored_json_bytes(Storage& storage) {
  QueryRequest everything;
  everything.now = std::numeric_limits<std::int64_t>::min();
  everything.max_limit = 100000;
  std::uint64_t bytes = 0;
  for (const StoredEvent& e : query(storage, Filter(), everything)) bytes += e.event->json().size();
  return bytes;
}

// size_bytes, which retention's size limit reads: the bytes of the stored events' JSON (bytes,
// not characters), the same on every storage, and less by an event's JSON as soon as anything
// removes it: a replacement, a deletion, an expiry purge, an erase. A storage that does not
// report it says "error: ..." and the limit is not applied.
inline void size_bytes_is_the_stored_json(const Factory& make) {
  auto s = fresh(make);
  Result<std::uint64_t> empty = s->size_bytes();
  if (!empty) {
    CHECK(empty.error().message().starts_with("error: "));
    return;
  }
  CHECK(*empty == 0);
  auto size = [&] {
    Result<std::uint64_t> bytes = s->size_bytes();
    REQUIRE(bytes.is_ok());
    return *bytes;
  };
  std::vector<EventPtr> notes;
  // Two- and three-byte UTF-8 characters: a count of characters would fall short.
  const std::string body = "h\u00e9llo \u2713 " + std::string(2000, 'x');
  for (int i = 0; i < 100; ++i) notes.push_back(event(test::alice(), 100 + i, body));
  write(*s, notes);
  CHECK(size() == stored_json_bytes(*s));
  CHECK(size() >= 100 * body.size());

  EventPtr profile = event(test::bob(), 100, "{}", {}, 0);
  EventPtr newer_profile = event(test::bob(), 200, "{\"name\":\"bob\"}", {}, 0);
  EventPtr expiring = event(test::bob(), 100, "soon", {{"expiration", "1000"}});
  write(*s, {profile, expiring});
  CHECK(size() == stored_json_bytes(*s));
  write_one(*s, newer_profile);  // replaces the profile
  CHECK(size() == stored_json_bytes(*s));
  write_one(*s, event(test::alice(), 300, "", {{"e", hex_id(notes[0])}}, 5));
  CHECK_FALSE(contains(*s, notes[0]));
  CHECK(size() == stored_json_bytes(*s));
  REQUIRE(s->purge_expired(1000).is_ok());
  CHECK_FALSE(contains(*s, expiring));
  CHECK(size() == stored_json_bytes(*s));
  const std::uint64_t before = size();
  REQUIRE(s->erase(std::vector<EventId>{notes[1]->id(), notes[2]->id()}).is_ok());
  CHECK(size() == before - notes[1]->json().size() - notes[2]->json().size());
  CHECK(size() == stored_json_bytes(*s));
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
