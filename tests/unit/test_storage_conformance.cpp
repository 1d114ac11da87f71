// The storage conformance suite run against both built-in storages, plus the pieces of the
// storage contract that only the built-ins promise (supersedes(), ephemeral refusal).
#include <catch2/catch.hpp>

#include "../conformance/sqlite_factory.hpp"
#include "../conformance/storage_conformance.hpp"
#include "relaycore/storage_wrapper.hpp"

namespace {

relaycore::SqliteOptions small_sqlite() {
  relaycore::SqliteOptions options;
  options.cache_kib = 2048;
  options.readers = 3;
  return options;
}

}  // namespace

RELAYCORE_STORAGE_CONFORMANCE(memory, relaycore::new_memory_storage())
RELAYCORE_STORAGE_SEARCH_CONFORMANCE(memory)

RELAYCORE_STORAGE_CONFORMANCE(sqlite, relaycore::conformance::temp_sqlite_storage(small_sqlite()))
RELAYCORE_STORAGE_SEARCH_CONFORMANCE(sqlite)

// A wrapper that overrides nothing must be the storage it wraps, call for call.
RELAYCORE_STORAGE_CONFORMANCE(wrapped_sqlite,
                              std::make_shared<relaycore::StorageWrapper>(
                                  relaycore::conformance::temp_sqlite_storage(small_sqlite())))

namespace relaycore {
namespace {

EventId id_with_first_byte(std::uint8_t b) {
  EventId id{};
  id[0] = b;
  return id;
}

void ephemeral_refused(Storage& s) {
  EventPtr e = test::signed_event(test::alice(), 20001, 100, "ephemeral");
  std::vector<WriteResult> results;
  REQUIRE(s.write_batch(std::vector<EventPtr>{e}, results).is_ok());
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == WriteOutcome::kRejected);
  CHECK(results[0].status.code() == StatusCode::kInvalid);
  auto found = s.contains(e->id());
  REQUIRE(found.is_ok());
  CHECK_FALSE(*found);
}

}  // namespace

TEST_CASE("supersedes: newest created_at wins, then lowest id", "[storage]") {
  const EventId low = id_with_first_byte(0x01);
  const EventId high = id_with_first_byte(0xf0);
  CHECK(supersedes(200, high, 100, low));
  CHECK_FALSE(supersedes(100, low, 200, high));
  CHECK(supersedes(100, low, 100, high));
  CHECK_FALSE(supersedes(100, high, 100, low));
  CHECK_FALSE(supersedes(100, low, 100, low));  // an event does not supersede itself
  // Byte order is lexicographic order of the hex form.
  EventId a{};
  EventId b{};
  a[31] = 0x0a;
  b[30] = 0x01;
  CHECK(supersedes(5, a, 5, b));
}

TEST_CASE("memory: ephemeral events are refused", "[storage]") {
  ephemeral_refused(*new_memory_storage());
}

TEST_CASE("sqlite: ephemeral events are refused", "[storage]") {
  ephemeral_refused(*conformance::temp_sqlite_storage());
}

}  // namespace relaycore
