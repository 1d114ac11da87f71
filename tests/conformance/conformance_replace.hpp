// Conformance: NIP-01 replaceable (0, 3, 10000-19999) and addressable (30000-39999) events.
#pragma once

#include "conformance_support.hpp"

namespace relaycore::conformance {

inline Filter slot_filter(const Keypair& keys, std::uint16_t kind) {
  Filter f = with_kinds({kind});
  f.authors = std::vector<Pubkey>{keys.pubkey()};
  return f;
}

inline void replaceable_newest_wins(const Factory& make) {
  for (std::uint16_t kind : {0, 3, 10002}) {
    auto s = fresh(make);
    EventPtr v1 = event(test::alice(), 100, "v1", {}, kind);
    EventPtr v2 = event(test::alice(), 200, "v2", {}, kind);
    WriteResult first = write_one(*s, v1);
    CHECK(first.outcome == WriteOutcome::kStored);
    WriteResult second = write_one(*s, v2);
    CHECK(second.outcome == WriteOutcome::kReplaced);
    REQUIRE(second.removed.size() == 1);
    CHECK(second.removed[0].id == v1->id());
    CHECK(second.removed[0].kind == kind);
    CHECK(second.removed[0].seq == first.seq);
    CHECK(second.removed[0].reason == RemovalReason::kReplaced);
    CHECK(second.removed[0].pubkey == test::alice().pubkey());
    CHECK(query_ids(*s, slot_filter(test::alice(), kind)) == ids_of({v2}));
    CHECK_FALSE(contains(*s, v1));
    // Another author's slot is separate.
    EventPtr other = event(test::bob(), 50, "bob", {}, kind);
    CHECK(write_one(*s, other).outcome == WriteOutcome::kStored);
    CHECK(query_ids(*s, with_kinds({kind})) == newest_first({v2, other}));
  }
}

// On equal created_at the lowest id is kept, whichever arrives first.
inline void equal_created_at_lowest_id_wins(const Factory& make) {
  EventPtr a = event(test::alice(), 500, "version a", {}, 0);
  EventPtr b = event(test::alice(), 500, "version b", {}, 0);
  const EventPtr& low = a->id() < b->id() ? a : b;
  const EventPtr& high = a->id() < b->id() ? b : a;

  auto low_first = fresh(make);
  CHECK(write_one(*low_first, low).outcome == WriteOutcome::kStored);
  WriteResult rejected = write_one(*low_first, high);
  CHECK(rejected.outcome == WriteOutcome::kRejected);
  CHECK(rejected.status.code() == StatusCode::kDuplicate);
  CHECK(query_ids(*low_first, slot_filter(test::alice(), 0)) == ids_of({low}));

  auto high_first = fresh(make);
  CHECK(write_one(*high_first, high).outcome == WriteOutcome::kStored);
  WriteResult replaced = write_one(*high_first, low);
  CHECK(replaced.outcome == WriteOutcome::kReplaced);
  CHECK(removed_ids(replaced) == ids_of({high}));
  CHECK(query_ids(*high_first, slot_filter(test::alice(), 0)) == ids_of({low}));
}

inline void older_version_rejected(const Factory& make) {
  auto s = fresh(make);
  EventPtr newer = event(test::alice(), 200, "newer", {}, 10000);
  EventPtr older = event(test::alice(), 100, "older", {}, 10000);
  write_one(*s, newer);
  WriteResult r = write_one(*s, older);
  CHECK(r.outcome == WriteOutcome::kRejected);
  CHECK(r.seq == 0);
  CHECK(r.status.message() == "duplicate: have a newer version of this event");
  CHECK(query_ids(*s, Filter()) == ids_of({newer}));
  CHECK_FALSE(contains(*s, older));
}

inline void addressable_keyed_by_d_tag(const Factory& make) {
  auto s = fresh(make);
  EventPtr a1 = event(test::alice(), 100, "a1", {{"d", "a"}}, 30023);
  EventPtr b1 = event(test::alice(), 101, "b1", {{"d", "b"}}, 30023);
  EventPtr none = event(test::alice(), 102, "no d", {}, 30023);
  EventPtr other_kind = event(test::alice(), 103, "other kind", {{"d", "a"}}, 30024);
  EventPtr other_author = event(test::bob(), 104, "bob", {{"d", "a"}}, 30023);
  for (const WriteResult& r : write(*s, {a1, b1, none, other_kind, other_author})) {
    CHECK(r.outcome == WriteOutcome::kStored);
  }

  EventPtr a2 = event(test::alice(), 200, "a2", {{"d", "a"}}, 30023);
  WriteResult r = write_one(*s, a2);
  CHECK(r.outcome == WriteOutcome::kReplaced);
  CHECK(removed_ids(r) == ids_of({a1}));
  // An empty d tag and a missing one are the same slot.
  EventPtr empty_d = event(test::alice(), 201, "empty d", {{"d", ""}}, 30023);
  WriteResult e = write_one(*s, empty_d);
  CHECK(e.outcome == WriteOutcome::kReplaced);
  CHECK(removed_ids(e) == ids_of({none}));

  CHECK(query_ids(*s, Filter()) == newest_first({a2, b1, empty_d, other_kind, other_author}));
  CHECK(query_ids(*s, with_tag('d', {"a"})) == newest_first({a2, other_kind, other_author}));
}

// Later events of a batch see earlier ones, replacements included.
inline void replacement_within_one_batch(const Factory& make) {
  auto s = fresh(make);
  EventPtr v1 = event(test::alice(), 100, "v1", {{"d", "x"}}, 30000);
  EventPtr v2 = event(test::alice(), 200, "v2", {{"d", "x"}}, 30000);
  std::vector<WriteResult> r = write(*s, {v1, v2});
  CHECK(r[0].outcome == WriteOutcome::kStored);
  CHECK(r[1].outcome == WriteOutcome::kReplaced);
  CHECK(removed_ids(r[1]) == ids_of({v1}));
  CHECK(r[1].removed[0].seq == r[0].seq);

  EventPtr v3 = event(test::alice(), 300, "v3", {{"d", "x"}}, 30000);
  EventPtr v0 = event(test::alice(), 50, "v0", {{"d", "x"}}, 30000);
  std::vector<WriteResult> q = write(*s, {v3, v0});
  CHECK(q[0].outcome == WriteOutcome::kReplaced);
  CHECK(removed_ids(q[0]) == ids_of({v2}));
  CHECK(q[1].outcome == WriteOutcome::kRejected);
  CHECK(query_ids(*s, Filter()) == ids_of({v3}));
}

}  // namespace relaycore::conformance
