// The SQLite storage's event cache: the conformance suite with it off (the main run has it on),
// the cache's own bounds and insert rule, reads that hand out the stored event itself rather
// than a re-parsed copy, and exact invalidation while readers race the writer.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "../conformance/sqlite_factory.hpp"
#include "../conformance/storage_conformance.hpp"
#include "storage/sqlite_event_cache.hpp"

namespace {

relaycore::SqliteOptions uncached_sqlite() {
  relaycore::SqliteOptions options;
  options.cache_kib = 2048;
  options.readers = 2;
  options.event_cache_entries = 0;
  return options;
}

}  // namespace

RELAYCORE_STORAGE_CONFORMANCE(sqlite_uncached,
                              relaycore::conformance::temp_sqlite_storage(uncached_sqlite()))
RELAYCORE_STORAGE_SEARCH_CONFORMANCE(sqlite_uncached)

namespace relaycore {
namespace {

using conformance::event;
using conformance::query;
using conformance::query_ids;
using conformance::with_ids;
using conformance::write;
using storage::EventCache;

std::shared_ptr<Storage> cached_sqlite(std::uint32_t entries, SqliteSync sync = SqliteSync::kFull) {
  SqliteOptions options;
  options.cache_kib = 2048;
  options.readers = 2;
  options.event_cache_entries = entries;
  options.synchronous = sync;
  return conformance::temp_sqlite_storage(options);
}

Filter by_author(const Keypair& keys) { return conformance::with_authors({keys.pubkey()}); }

}  // namespace

TEST_CASE("event cache: holds at most its capacity", "[storage]") {
  EventCache cache(16);
  std::vector<EventPtr> events;
  for (int i = 0; i < 200; ++i) events.push_back(event(test::alice(), 100 + i, "e"));
  for (std::size_t i = 0; i < events.size(); ++i) {
    cache.insert_stored(StoredEvent{events[i], i + 1});
  }
  CHECK(cache.size() == 16);
  // The last event stored is in.
  auto last = cache.find(events.back()->id());
  REQUIRE(last.has_value());
  CHECK(last->event == events.back());
  CHECK(last->seq == events.size());
}

TEST_CASE("event cache: an event found since the last eviction pass is spared", "[storage]") {
  // 16 shards of 4 entries; five events that share a shard (the shard is the id's low 4 bits).
  EventCache cache(64);
  std::vector<EventPtr> same_shard;
  for (int i = 0; same_shard.size() < 5; ++i) {
    EventPtr e = event(test::alice(), 100 + i, "e");
    if ((e->id()[0] & 15) == 0) same_shard.push_back(e);
  }
  for (int i = 0; i < 4; ++i) cache.insert_stored(StoredEvent{same_shard[i], 1});
  REQUIRE(cache.find(same_shard[0]->id()).has_value());
  cache.insert_stored(StoredEvent{same_shard[4], 1});
  CHECK(cache.size() == 4);
  CHECK(cache.find(same_shard[4]->id()).has_value());
  // One of those not found went; never the one found.
  CHECK(cache.find(same_shard[0]->id()).has_value());
  int kept = 0;
  for (int i = 1; i < 4; ++i) kept += cache.find(same_shard[i]->id()).has_value() ? 1 : 0;
  CHECK(kept == 2);
}

TEST_CASE("event cache: removals keep every other entry reachable", "[storage]") {
  // Room for all, so nothing is evicted: what is found is exactly what was not removed.
  EventCache cache(4096);
  std::vector<EventPtr> events;
  for (int i = 0; i < 1000; ++i) {
    events.push_back(event(test::alice(), 100 + i, "e"));
    cache.insert_stored(StoredEvent{events.back(), static_cast<std::uint64_t>(i + 1)});
  }
  // Two rounds of removals, the second over entries the first moved.
  std::vector<EventId> erased;
  for (int i = 0; i < 1000; i += 2) erased.push_back(events[i]->id());
  cache.erase(erased);
  erased.clear();
  for (int i = 0; i < 500; i += 3) erased.push_back(events[i]->id());
  cache.erase(erased);
  std::size_t expected = 0;
  for (int i = 0; i < 1000; ++i) {
    const bool gone = i % 2 == 0 || (i % 3 == 0 && i < 500);
    INFO(i);
    CHECK(cache.find(events[i]->id()).has_value() == !gone);
    expected += gone ? 0 : 1;
  }
  CHECK(cache.size() == expected);
}

TEST_CASE("event cache: a read from before a removal is not cached", "[storage]") {
  EventCache cache(1000);
  EventPtr e = event(test::alice(), 100, "e");
  const std::uint64_t before = cache.generation();
  const std::vector<EventId> removed = {event(test::bob(), 1, "other")->id()};
  cache.erase(removed);
  cache.insert_read(StoredEvent{e, 1}, before);
  CHECK_FALSE(cache.find(e->id()).has_value());
  cache.insert_read(StoredEvent{e, 1}, cache.generation());
  CHECK(cache.find(e->id()).has_value());
}

TEST_CASE("sqlite event cache: reads hand out the stored event, not a re-parsed copy",
          "[storage]") {
  auto s = cached_sqlite(1000);
  EventPtr a = event(test::alice(), 100, "a");
  EventPtr b = event(test::alice(), 101, "b");
  write(*s, {a, b});
  std::vector<StoredEvent> by_id = query(*s, with_ids({a, b}));
  REQUIRE(by_id.size() == 2);
  CHECK(by_id[0].event == b);
  CHECK(by_id[1].event == a);
  std::vector<StoredEvent> by_pubkey = query(*s, by_author(test::alice()));
  REQUIRE(by_pubkey.size() == 2);
  CHECK(by_pubkey[0].event == b);
  CHECK(by_pubkey[1].event == a);
}

TEST_CASE("sqlite event cache: a row read once is parsed once", "[storage]") {
  // Stored through one storage, read through another over the same file, whose cache is empty.
  conformance::TempDir dir;
  SqliteOptions options;
  options.path = dir.file("events.db");
  EventPtr a = event(test::alice(), 100, "a");
  {
    auto writer = new_sqlite_storage(options);
    REQUIRE(writer.is_ok());
    write(**writer, {a});
  }
  auto reader = new_sqlite_storage(options);
  REQUIRE(reader.is_ok());
  std::vector<StoredEvent> first = query(**reader, by_author(test::alice()));
  REQUIRE(first.size() == 1);
  CHECK(first[0].event != a);
  CHECK(first[0].event->json() == a->json());
  std::vector<StoredEvent> again = query(**reader, with_ids({a}));
  REQUIRE(again.size() == 1);
  CHECK(again[0].event == first[0].event);
  CHECK(again[0].seq == first[0].seq);
}

TEST_CASE(
    "sqlite event cache: an ids filter mixes cached and uncached events in order, under its limit",
    "[storage]") {
  // 16 entries, so most of the 64 events are read from SQLite.
  auto s = cached_sqlite(16);
  std::vector<EventPtr> events;
  for (int i = 0; i < 64; ++i) {
    events.push_back(event(test::alice(), 100 + i % 8, std::to_string(i)));
  }
  write(*s, events);
  Filter f = with_ids(events);
  CHECK(query_ids(*s, f) == conformance::newest_first(events));
  f.limit = 10;
  std::vector<EventId> expected = conformance::newest_first(events);
  expected.resize(10);
  CHECK(query_ids(*s, f) == expected);
  // Conditions beyond the ids still apply to cached events.
  Filter other_author = with_ids(events);
  other_author.authors = std::vector<Pubkey>{test::bob().pubkey()};
  CHECK(query_ids(*s, other_author).empty());
}

TEST_CASE("sqlite event cache: events are forgotten when erased, purged, deleted or replaced",
          "[storage]") {
  auto s = cached_sqlite(1000);
  EventPtr erased = event(test::alice(), 100, "erased");
  EventPtr expiring = event(test::alice(), 101, "expiring", {{"expiration", "1000"}});
  EventPtr deleted = event(test::alice(), 102, "deleted");
  EventPtr old_profile = event(test::alice(), 103, "old", {}, 0);
  write(*s, {erased, expiring, deleted, old_profile});
  const Filter all = with_ids({erased, expiring, deleted, old_profile});
  CHECK(query_ids(*s, all).size() == 4);

  const std::vector<EventId> to_erase = {erased->id()};
  REQUIRE(s->erase(to_erase).is_ok());
  auto purged = s->purge_expired(1000);
  REQUIRE(purged.is_ok());
  REQUIRE(purged->size() == 1);
  CHECK(purged->front().id == expiring->id());
  write(*s, {event(test::alice(), 200, "", {{"e", conformance::hex_id(deleted)}}, 5),
             event(test::alice(), 201, "new", {}, 0)});

  QueryRequest earlier;
  earlier.now = 500;  // before the expiration: only the purge hides it
  CHECK(query_ids(*s, all, earlier).empty());
}

TEST_CASE("sqlite event cache: once a removing write returns, no read returns what it removed",
          "[storage][race]") {
  // A small cache, so readers keep missing, reading from SQLite and inserting what they read.
  // Durability is not what this tests.
  auto s = cached_sqlite(16, SqliteSync::kNormal);
  constexpr int kRounds = 200;
  std::vector<EventPtr> notes;
  std::vector<EventPtr> profiles;
  for (int i = 0; i < kRounds; ++i) {
    notes.push_back(event(test::alice(), 1000 + i, "note"));
    profiles.push_back(event(test::alice(), 1000 + i, "profile", {}, 0));
  }
  // Rounds whose removing writes have returned: the round's note deleted and, but for the last
  // round, its profile replaced by the next.
  std::atomic<int> removed_through{-1};
  std::atomic<bool> done{false};
  std::atomic<int> stale{0};
  std::atomic<int> failures{0};
  std::atomic<int> reads{0};

  auto reader = [&](bool by_ids) {
    while (!done.load()) {
      const int through = removed_through.load();
      const int upto = std::min(kRounds - 1, through + 2);
      Filter f;
      if (by_ids) {
        std::vector<EventPtr> asked;
        for (int i = std::max(0, through - 3); i <= upto; ++i) {
          asked.push_back(notes[i]);
          asked.push_back(profiles[i]);
        }
        f = with_ids(asked);
      } else {
        f = by_author(test::alice());
        f.kinds = std::vector<std::uint16_t>{0, 1};
        f.limit = 8;
      }
      Status st = s->query(f, QueryRequest(), [&](const StoredEvent& e) {
        for (int i = 0; i <= through; ++i) {
          if (e.event->id() == notes[i]->id()) ++stale;
          if (i + 1 < kRounds && e.event->id() == profiles[i]->id()) ++stale;
        }
        return true;
      });
      if (!st) ++failures;
      ++reads;
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(reader, true);
  threads.emplace_back(reader, false);
  threads.emplace_back(reader, true);

  for (int i = 0; i < kRounds; ++i) {
    write(*s, {notes[i], profiles[i]});
    // Wait until readers have had the new events in hand, so the removal races their reads.
    const int seen = reads.load();
    while (reads.load() < seen + 2) std::this_thread::yield();
    // The kind 5 deletes this round's note; the next round's profile replaces this one.
    write(*s, {event(test::alice(), 5000 + i, "", {{"e", conformance::hex_id(notes[i])}}, 5)});
    if (i + 1 < kRounds) write(*s, {profiles[i + 1]});
    removed_through.store(i);
  }
  done.store(true);
  for (std::thread& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(stale.load() == 0);
}

}  // namespace relaycore
