// The retention rules' behaviours, written once over a storage factory, so that each storage
// (memory and SQLite in test_retention.cpp, PostgreSQL in tests/postgres) is checked alike. The
// rules are driven a step at a time, as the writer drives them.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../conformance/conformance_support.hpp"
#include "pipeline/retention.hpp"

namespace relaycore::retention_test {

using conformance::Factory;
using pipeline::Retention;

inline constexpr std::int64_t kDay = 86400;

// Drives one check of the rules to its end, as the writer would, and returns what it removed.
// Every step removes at most a batch, and every removal names the rule behind it.
class Checker {
 public:
  explicit Checker(Storage& storage) : retention_(storage, log_) {}

  std::vector<RemovedEvent> check(const RetentionRules& rules, std::int64_t now) {
    std::vector<RemovedEvent> removed;
    for (int steps = 0;; ++steps) {
      REQUIRE(steps < 10000);
      Result<std::vector<RemovedEvent>> step = retention_.step(rules, now, clock_);
      INFO((step ? "" : step.error().message()));
      REQUIRE(step.is_ok());
      CHECK(step->size() <= rules.batch_size);
      for (const RemovedEvent& r : *step) {
        CHECK(r.reason == RemovalReason::kRetention);
        removed.push_back(r);
      }
      if (!retention_.pending()) break;
    }
    // The next check is due after the interval.
    clock_ += std::chrono::seconds(rules.interval_seconds);
    return removed;
  }

 private:
  Log log_;
  Retention retention_;
  Retention::Clock::time_point clock_ = Retention::Clock::now();
};

inline std::set<EventId> id_set(const std::vector<RemovedEvent>& removed) {
  std::set<EventId> ids;
  for (const RemovedEvent& r : removed) ids.insert(r.id);
  return ids;
}

inline std::set<EventId> id_set(const std::vector<EventPtr>& events) {
  std::set<EventId> ids;
  for (const EventPtr& e : events) ids.insert(e->id());
  return ids;
}

inline bool all_by(const std::vector<RemovedEvent>& removed, RetentionRule rule) {
  return std::all_of(removed.begin(), removed.end(),
                     [&](const RemovedEvent& r) { return r.rule == rule; });
}

inline std::set<EventId> stored_ids(Storage& storage) {
  std::set<EventId> ids;
  QueryRequest everything;
  everything.max_limit = 100000;
  for (const StoredEvent& e : conformance::query(storage, Filter(), everything)) {
    ids.insert(e.event->id());
  }
  return ids;
}

inline EventPtr note(const Keypair& keys, std::uint16_t kind, std::int64_t created_at,
                     std::vector<Tag> tags = {}, std::string content = "") {
  return test::signed_event(keys, kind, created_at, std::move(content), std::move(tags));
}

// Events of a kind a max-age rule names go once older than its age; other kinds stay.
inline void max_age_removes_old_events(const Factory& make) {
  std::shared_ptr<Storage> storage = conformance::fresh(make);
  const std::int64_t now = test::now();
  std::vector<EventPtr> old_notes;
  for (int i = 0; i < 5; ++i) old_notes.push_back(note(test::alice(), 1, now - 31 * kDay - i));
  EventPtr young_note = note(test::bob(), 1, now - 29 * kDay);
  EventPtr ancient_profile = note(test::alice(), 0, now - 1000 * kDay);
  EventPtr old_article = note(test::alice(), 30023, now - 100 * kDay, {{"d", "a"}});
  EventPtr young_article = note(test::alice(), 30023, now - 10 * kDay, {{"d", "b"}});
  EventPtr old_reaction = note(test::bob(), 7, now - 400 * kDay);
  std::vector<EventPtr> all = old_notes;
  for (const EventPtr& e :
       {young_note, ancient_profile, old_article, young_article, old_reaction}) {
    all.push_back(e);
  }
  conformance::write(*storage, all);

  RetentionRules rules;
  rules.max_age = {{{1, 1}, 30 * kDay}, {{30000, 39999}, 90 * kDay}};
  rules.batch_size = 2;
  Checker checker(*storage);
  std::vector<RemovedEvent> removed = checker.check(rules, now);

  std::set<EventId> expected = id_set(old_notes);
  expected.insert(old_article->id());
  CHECK(id_set(removed) == expected);
  CHECK(removed.size() == expected.size());
  CHECK(all_by(removed, RetentionRule::kMaxAge));
  // Kinds no rule names stay, however old.
  CHECK(stored_ids(*storage) == id_set({young_note, ancient_profile, young_article, old_reaction}));

  // A later check finds nothing more until an event ages past its limit.
  CHECK(checker.check(rules, now).empty());
  std::vector<RemovedEvent> aged = checker.check(rules, now + 2 * kDay);
  CHECK(id_set(aged) == id_set({young_note}));
}

// Each author keeps their newest events of a per-author rule's kinds.
inline void max_per_author_keeps_the_newest(const Factory& make) {
  std::shared_ptr<Storage> storage = conformance::fresh(make);
  const std::int64_t t = test::now() - 1000;
  std::vector<EventPtr> alice_notes;
  for (int i = 0; i < 5; ++i) alice_notes.push_back(note(test::alice(), 1, t + i));
  EventPtr reaction1 = note(test::alice(), 7, t + 5);
  EventPtr reaction2 = note(test::alice(), 7, t + 6);
  EventPtr profile = note(test::alice(), 0, t - 10);
  EventPtr repost = note(test::alice(), 6, t - 20);
  EventPtr bob1 = note(test::bob(), 1, t);
  EventPtr bob2 = note(test::bob(), 1, t + 1);
  std::vector<EventPtr> all = alice_notes;
  for (const EventPtr& e : {reaction1, reaction2, profile, repost, bob1, bob2}) {
    all.push_back(e);
  }
  conformance::write(*storage, all);

  RetentionRules rules;
  rules.max_per_author = {{{{1, 1}, {7, 7}}, 3}};
  rules.batch_size = 2;
  Checker checker(*storage);
  std::vector<RemovedEvent> removed = checker.check(rules, test::now());
  // Alice's newest three of kinds 1 and 7 together: both reactions and her newest note.
  CHECK(id_set(removed) ==
        id_set({alice_notes[0], alice_notes[1], alice_notes[2], alice_notes[3]}));
  CHECK(removed.size() == 4);
  CHECK(all_by(removed, RetentionRule::kMaxPerAuthor));
  for (const RemovedEvent& r : removed) CHECK(r.pubkey == test::alice().pubkey());
  CHECK(stored_ids(*storage) ==
        id_set({alice_notes[4], reaction1, reaction2, profile, repost, bob1, bob2}));

  // Events stored since the last check count at the next one.
  EventPtr newer = note(test::alice(), 1, t + 10);
  conformance::write_one(*storage, newer);
  CHECK(id_set(checker.check(rules, test::now())) == id_set({alice_notes[4]}));
  // New rules are checked at once, over every author again.
  rules.max_per_author[0].max_events = 1;
  CHECK(id_set(checker.check(rules, test::now())) == id_set({reaction1, reaction2, bob1}));
}

// Over max-bytes, the regular events stored first go until the stored JSON is back under the
// limit, and no further: the total ends less than one event below it, replaceable and
// addressable events stay, and later checks with nothing new stored remove nothing.
inline void max_bytes_stops_at_the_limit(const Factory& make) {
  std::shared_ptr<Storage> storage = conformance::fresh(make);
  const std::int64_t t = test::now() - 1000;
  // Stored first, so oldest: a profile and an article, which size never removes.
  EventPtr profile = note(test::alice(), 0, t);
  EventPtr article = note(test::alice(), 30023, t, {{"d", "a"}});
  conformance::write(*storage, {profile, article});
  std::vector<EventPtr> notes;
  // Text of some 4 KB, in words as notes have them.
  std::string body;
  for (int w = 0; body.size() < 4000; ++w) body += "word" + std::to_string(w % 300) + " ";
  for (int i = 0; i < 60; ++i) {
    // Stored in this order, though dated the other way round: stored first goes first.
    notes.push_back(note(i % 2 == 0 ? test::alice() : test::bob(), 1, t + 100 - i, {},
                         body + std::to_string(i)));
    conformance::write_one(*storage, notes.back());
  }
  Result<std::uint64_t> full = storage->size_bytes();
  REQUIRE(full.is_ok());
  RetentionRules rules;
  rules.max_bytes = *full / 2;
  rules.batch_size = 4;
  // The fewest notes, stored first, whose JSON covers the excess.
  std::size_t expected = 0;
  for (std::uint64_t freed = 0; freed < *full - rules.max_bytes; ++expected) {
    freed += notes[expected]->json().size();
  }
  Checker checker(*storage);
  std::vector<RemovedEvent> removed = checker.check(rules, test::now());
  REQUIRE(removed.size() == expected);
  CHECK(all_by(removed, RetentionRule::kMaxBytes));
  for (std::size_t i = 0; i < removed.size(); ++i) CHECK(removed[i].id == notes[i]->id());
  const std::uint64_t after = storage->size_bytes().value();
  CHECK(after <= rules.max_bytes);
  CHECK(after > rules.max_bytes - notes[expected - 1]->json().size());
  std::set<EventId> left = stored_ids(*storage);
  CHECK(left.contains(profile->id()));
  CHECK(left.contains(article->id()));
  CHECK(left.size() == 62 - removed.size());

  // Under the limit, later checks leave everything be, whatever the files look like.
  CHECK(checker.check(rules, test::now()).empty());
  CHECK(checker.check(rules, test::now()).empty());
  CHECK(stored_ids(*storage).size() == left.size());
  // A new note, twice as long, takes the total over again: the oldest notes left go, as many
  // as cover the new excess.
  EventPtr longer = note(test::bob(), 1, t + 200, {}, body + body);
  conformance::write_one(*storage, longer);
  REQUIRE(after + longer->json().size() > rules.max_bytes);
  std::size_t next_expected = expected;
  for (std::uint64_t freed = 0; freed < after + longer->json().size() - rules.max_bytes;
       ++next_expected) {
    freed += notes[next_expected]->json().size();
  }
  std::vector<RemovedEvent> next = checker.check(rules, test::now());
  REQUIRE(next.size() == next_expected - expected);
  for (std::size_t i = 0; i < next.size(); ++i) CHECK(next[i].id == notes[expected + i]->id());
  CHECK(storage->size_bytes().value() <= rules.max_bytes);
}

}  // namespace relaycore::retention_test
