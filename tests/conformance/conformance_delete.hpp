// Conformance: NIP-09 deletion requests (kind 5) by e tag and by a tag, and their tombstones.
#pragma once

#include "conformance_support.hpp"

namespace relaycore::conformance {

inline EventPtr deletion(const Keypair& keys, std::int64_t created_at, std::vector<Tag> tags) {
  return event(keys, created_at, "deleted", std::move(tags), 5);
}

inline void deletes_own_event_by_e_tag(const Factory& make) {
  auto s = fresh(make);
  EventPtr note = event(test::alice(), 100, "oops");
  EventPtr keep = event(test::alice(), 101, "keep");
  WriteResult stored = write_one(*s, note);
  write_one(*s, keep);
  EventPtr del = deletion(test::alice(), 200, {{"e", hex_id(note)}, {"k", "1"}});
  WriteResult r = write_one(*s, del);
  CHECK(r.outcome == WriteOutcome::kStored);
  CHECK(r.seq > 0);
  REQUIRE(r.removed.size() == 1);
  CHECK(r.removed[0].id == note->id());
  CHECK(r.removed[0].kind == 1);
  CHECK(r.removed[0].seq == stored.seq);
  CHECK(r.removed[0].reason == RemovalReason::kDeleted);
  CHECK(r.removed[0].pubkey == test::alice().pubkey());
  CHECK_FALSE(contains(*s, note));
  // The deletion request itself is kept and served.
  CHECK(query_ids(*s, Filter()) == newest_first({del, keep}));
}

inline void deletion_of_others_event_has_no_effect(const Factory& make) {
  auto s = fresh(make);
  EventPtr bobs = event(test::bob(), 100, "bob's");
  write_one(*s, bobs);
  EventPtr later_bobs = event(test::bob(), 101, "bob's, not yet stored");
  EventPtr del = deletion(test::alice(), 200, {{"e", hex_id(bobs)}, {"e", hex_id(later_bobs)}});
  WriteResult r = write_one(*s, del);
  CHECK(r.outcome == WriteOutcome::kStored);
  CHECK(r.removed.empty());
  CHECK(contains(*s, bobs));
  // Alice's request does not block Bob's event from arriving later either.
  CHECK(write_one(*s, later_bobs).outcome == WriteOutcome::kStored);
  CHECK(query_ids(*s, with_authors({test::bob().pubkey()})) == newest_first({bobs, later_bobs}));
}

inline void deletes_by_a_tag_up_to_created_at(const Factory& make) {
  auto s = fresh(make);
  EventPtr article = event(test::alice(), 100, "v1", {{"d", "post"}}, 30023);
  EventPtr other_d = event(test::alice(), 100, "other", {{"d", "keep"}}, 30023);
  EventPtr profile = event(test::alice(), 100, "profile", {}, 0);
  write(*s, {article, other_d, profile});

  EventPtr del = deletion(
      test::alice(), 150,
      {{"a", address(30023, test::alice(), "post")}, {"a", address(0, test::alice(), "")}});
  WriteResult r = write_one(*s, del);
  CHECK(r.outcome == WriteOutcome::kStored);
  CHECK(sorted(removed_ids(r)) == sorted(ids_of({article, profile})));
  CHECK(all_for(r.removed, RemovalReason::kDeleted));
  CHECK(query_ids(*s, Filter()) == newest_first({del, other_d}));

  // Versions up to the deletion's created_at stay deleted; newer ones are welcome.
  EventPtr stale = event(test::alice(), 150, "v1.5", {{"d", "post"}}, 30023);
  CHECK(write_one(*s, stale).outcome == WriteOutcome::kDeleted);
  EventPtr fresh_version = event(test::alice(), 151, "v2", {{"d", "post"}}, 30023);
  CHECK(write_one(*s, fresh_version).outcome == WriteOutcome::kStored);
  EventPtr old_profile = event(test::alice(), 120, "old profile", {}, 0);
  CHECK(write_one(*s, old_profile).outcome == WriteOutcome::kDeleted);
  CHECK(query_ids(*s, Filter()) == newest_first({fresh_version, del, other_d}));
}

inline void a_tag_for_another_author_has_no_effect(const Factory& make) {
  auto s = fresh(make);
  EventPtr article = event(test::alice(), 100, "alice's", {{"d", "post"}}, 30023);
  write_one(*s, article);
  EventPtr del = deletion(test::bob(), 200, {{"a", address(30023, test::alice(), "post")}});
  WriteResult r = write_one(*s, del);
  CHECK(r.outcome == WriteOutcome::kStored);
  CHECK(r.removed.empty());
  CHECK(contains(*s, article));
  EventPtr newer = event(test::alice(), 150, "alice's v2", {{"d", "post"}}, 30023);
  CHECK(write_one(*s, newer).outcome == WriteOutcome::kReplaced);
}

// Re-publishing a deleted event is refused, whether the event came before or after the request.
inline void republished_deleted_event_is_refused(const Factory& make) {
  auto s = fresh(make);
  EventPtr note = event(test::alice(), 100, "gone");
  write_one(*s, note);
  write_one(*s, deletion(test::alice(), 200, {{"e", hex_id(note)}}));
  WriteResult again = write_one(*s, note);
  CHECK(again.outcome == WriteOutcome::kDeleted);
  CHECK(again.seq == 0);
  CHECK_FALSE(contains(*s, note));
  CHECK(query_ids(*s, with_kinds({1})).empty());

  // The request may arrive first, even in the same batch.
  EventPtr early = event(test::alice(), 300, "deleted before it arrived");
  EventPtr del = deletion(test::alice(), 301, {{"e", hex_id(early)}});
  std::vector<WriteResult> r = write(*s, {del, early});
  CHECK(r[0].outcome == WriteOutcome::kStored);
  CHECK(r[1].outcome == WriteOutcome::kDeleted);
  CHECK_FALSE(contains(*s, early));
}

// NIP-09: a deletion request against a deletion request has no effect.
inline void deleting_a_deletion_has_no_effect(const Factory& make) {
  auto s = fresh(make);
  EventPtr note = event(test::alice(), 100, "note");
  EventPtr first = deletion(test::alice(), 200, {{"e", hex_id(note)}});
  write(*s, {note, first});
  EventPtr second = deletion(test::alice(), 300, {{"e", hex_id(first)}});
  WriteResult r = write_one(*s, second);
  CHECK(r.outcome == WriteOutcome::kStored);
  CHECK(r.removed.empty());
  CHECK(contains(*s, first));
  CHECK_FALSE(contains(*s, note));  // and the first request still holds
  CHECK(write_one(*s, note).outcome == WriteOutcome::kDeleted);
}

}  // namespace relaycore::conformance
