// Helpers for the storage conformance suite: a fresh storage per case, writing and querying
// with Catch2 checks, and filters built field by field.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../unit/test_util.hpp"
#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::conformance {

// Makes a new, empty storage each time it is called.
using Factory = std::function<std::shared_ptr<Storage>()>;

inline std::shared_ptr<Storage> fresh(const Factory& make) {
  std::shared_ptr<Storage> storage = make();
  REQUIRE(storage != nullptr);
  return storage;
}

// A signed event; `kind` defaults to a regular text note.
inline EventPtr event(const Keypair& keys, std::int64_t created_at, std::string content = "",
                      std::vector<Tag> tags = {}, std::uint16_t kind = 1) {
  return test::signed_event(keys, kind, created_at, std::move(content), std::move(tags));
}

inline std::vector<WriteResult> write(Storage& storage, const std::vector<EventPtr>& events) {
  std::vector<WriteResult> results;
  Status status = storage.write_batch(events, results);
  INFO(status.message());
  REQUIRE(status.is_ok());
  REQUIRE(results.size() == events.size());
  return results;
}

inline WriteResult write_one(Storage& storage, const EventPtr& e) { return write(storage, {e})[0]; }

inline std::vector<StoredEvent> query(Storage& storage, const Filter& filter,
                                      const QueryRequest& request = QueryRequest()) {
  std::vector<StoredEvent> out;
  Status status = storage.query(filter, request, [&](const StoredEvent& stored) {
    out.push_back(stored);
    return true;
  });
  INFO(status.message());
  REQUIRE(status.is_ok());
  return out;
}

inline std::vector<EventId> query_ids(Storage& storage, const Filter& filter,
                                      const QueryRequest& request = QueryRequest()) {
  std::vector<EventId> ids;
  for (const StoredEvent& stored : query(storage, filter, request)) {
    ids.push_back(stored.event->id());
  }
  return ids;
}

inline std::uint64_t count(Storage& storage, const std::vector<Filter>& filters,
                           const QueryRequest& request = QueryRequest()) {
  auto n = storage.count(filters, request);
  REQUIRE(n.is_ok());
  return *n;
}

inline bool contains(Storage& storage, const EventPtr& e) {
  auto found = storage.contains(e->id());
  REQUIRE(found.is_ok());
  return *found;
}

inline std::uint64_t max_seq(Storage& storage) {
  auto seq = storage.max_seq();
  REQUIRE(seq.is_ok());
  return *seq;
}

inline std::vector<EventId> ids_of(const std::vector<EventPtr>& events) {
  std::vector<EventId> ids;
  for (const EventPtr& e : events) ids.push_back(e->id());
  return ids;
}

// The events in NIP-01 result order: created_at descending, then id ascending.
inline std::vector<EventId> newest_first(std::vector<EventPtr> events) {
  std::sort(events.begin(), events.end(), [](const EventPtr& a, const EventPtr& b) {
    if (a->created_at() != b->created_at()) return a->created_at() > b->created_at();
    return a->id() < b->id();
  });
  return ids_of(events);
}

// What a query of `f` returns from `events`, all stored and visible: the matching ones in
// NIP-01 order, cut at the filter's limit.
inline std::vector<EventId> expected_ids(const std::vector<EventPtr>& events, const Filter& f) {
  std::vector<EventPtr> matching;
  for (const EventPtr& e : events) {
    if (f.matches(*e)) matching.push_back(e);
  }
  std::vector<EventId> ids = newest_first(std::move(matching));
  if (f.limit && ids.size() > *f.limit) ids.resize(*f.limit);
  return ids;
}

inline std::vector<EventId> removed_ids(const std::vector<RemovedEvent>& removed) {
  std::vector<EventId> ids;
  for (const RemovedEvent& r : removed) ids.push_back(r.id);
  return ids;
}

inline std::vector<EventId> removed_ids(const WriteResult& result) {
  return removed_ids(result.removed);
}

// True when every removal has this reason.
inline bool all_for(const std::vector<RemovedEvent>& removed, RemovalReason reason) {
  return std::all_of(removed.begin(), removed.end(),
                     [&](const RemovedEvent& r) { return r.reason == reason; });
}

// Filter lists must be sorted and free of repeats.
template <typename T>
std::vector<T> sorted(std::vector<T> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

inline Filter with_ids(const std::vector<EventPtr>& events) {
  Filter f;
  f.ids = sorted(ids_of(events));
  return f;
}

inline Filter with_authors(std::vector<Pubkey> authors) {
  Filter f;
  f.authors = sorted(std::move(authors));
  return f;
}

inline Filter with_kinds(std::vector<std::uint16_t> kinds) {
  Filter f;
  f.kinds = sorted(std::move(kinds));
  return f;
}

inline Filter with_tag(char name, std::vector<std::string> values) {
  Filter f;
  f.tags.push_back(TagCondition{name, sorted(std::move(values))});
  return f;
}

inline Filter with_limit(std::uint32_t limit) {
  Filter f;
  f.limit = limit;
  return f;
}

// The "<kind>:<pubkey>:<d>" coordinate NIP-09 a tags use.
inline std::string address(std::uint16_t kind, const Keypair& keys, const std::string& d) {
  return std::to_string(kind) + ":" + to_hex(keys.pubkey()) + ":" + d;
}

inline std::string hex_id(const EventPtr& e) { return std::string(e->id_hex()); }

}  // namespace relaycore::conformance
