// SubscriptionIndex on its own: where each filter is filed, the since order within a list, one
// match per subscription, removal, and the rule that keeps a stored event out of live delivery
// when the subscription's history already holds it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "pipeline/subscription_index.hpp"
#include "relaycore/filter.hpp"
#include "test_util.hpp"

using namespace relaycore;
using relaycore::pipeline::Subscription;
using relaycore::pipeline::SubscriptionIndex;

namespace {

using SubPtr = std::shared_ptr<Subscription>;

// A subscription with no outbox: the index only files it and hands it back.
SubPtr make_sub(std::uint64_t key, const std::vector<std::string>& filters_json) {
  std::vector<Filter> filters;
  for (const std::string& json : filters_json) filters.push_back(parse_filter(json).value());
  return std::make_shared<Subscription>(key, "s" + std::to_string(key), std::move(filters),
                                        std::weak_ptr<pipeline::Outbox>(), 1 << 20);
}

// The keys of the subscriptions `event` (committed at `seq`, 0 for unsequenced) matches, in
// the order match() returned them.
std::vector<std::uint64_t> matched(SubscriptionIndex& index, const EventPtr& event,
                                   std::uint64_t seq = 0) {
  std::vector<SubPtr> out;
  index.match(*event, seq, out);
  std::vector<std::uint64_t> keys;
  for (const SubPtr& s : out) keys.push_back(s->key);
  return keys;
}

std::set<std::uint64_t> matched_set(SubscriptionIndex& index, const EventPtr& event,
                                    std::uint64_t seq = 0) {
  std::vector<std::uint64_t> keys = matched(index, event, seq);
  return {keys.begin(), keys.end()};
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

// Broken by a filter filed under a field it then fails to look up, or by a lookup that trusts
// the list a filter is filed in without checking the filter's other conditions.
TEST_CASE("SubscriptionIndex files each filter by ids, authors, a tag, kinds or none",
          "[pipeline][index]") {
  const std::int64_t t = test::now() - 100;
  EventPtr note = test::signed_event(test::alice(), 1, t, "note", {{"t", "nostr"}});
  EventPtr reaction = test::signed_event(test::bob(), 7, t, "+", {{"e", "x"}, {"t", "other"}});
  EventPtr bobs_note = test::signed_event(test::bob(), 1, t, "bob", {{"t", "nostr"}});

  SubscriptionIndex index;
  index.add(make_sub(1, {R"({"ids":[)" + quoted(note->id_hex()) + "]}"}));
  index.add(make_sub(2, {R"({"authors":[)" + quoted(to_hex(test::bob().pubkey())) + "]}"}));
  // Filed under authors, and still held to its kinds.
  index.add(make_sub(
      3, {R"({"authors":[)" + quoted(to_hex(test::bob().pubkey())) + R"(],"kinds":[7]})"}));
  index.add(make_sub(4, {R"({"#t":["nostr"]})"}));
  // Filed under its first tag condition (#e), and still held to the second (#t).
  index.add(make_sub(5, {R"({"#e":["x"],"#t":["nostr"]})"}));
  index.add(make_sub(6, {R"({"kinds":[7]})"}));
  index.add(make_sub(7, {"{}"}));
  // No selective field: scanned for every event, held to its until.
  index.add(make_sub(8, {R"({"until":)" + std::to_string(t - 1) + "}"}));
  CHECK(index.size() == 8);

  CHECK(matched_set(index, note) == std::set<std::uint64_t>{1, 4, 7});
  CHECK(matched_set(index, reaction) == std::set<std::uint64_t>{2, 3, 6, 7});
  CHECK(matched_set(index, bobs_note) == std::set<std::uint64_t>{2, 4, 7});
  EventPtr old = test::signed_event(test::alice(), 3, t - 5, "contacts");
  CHECK(matched_set(index, old) == std::set<std::uint64_t>{7, 8});
}

// Broken by a list that is not kept sorted by since (the lookup stops at the first later since
// and would miss the filters behind it) or by a stop that skips a since equal to created_at.
TEST_CASE("SubscriptionIndex matches exactly the filters whose since is not after the event",
          "[pipeline][index]") {
  const std::int64_t t = test::now() - 1000;
  SubscriptionIndex index;
  // Out of since order, in the scan list and in one kind list alike.
  const std::vector<std::int64_t> offsets = {300, -50, 0, 120, -400, 1, 60, -1};
  std::uint64_t key = 0;
  for (std::int64_t offset : offsets) {
    const std::string since = std::to_string(t + offset);
    index.add(make_sub(++key, {R"({"since":)" + since + "}"}));
    index.add(make_sub(++key, {R"({"kinds":[1],"since":)" + since + "}"}));
  }
  index.add(make_sub(++key, {R"({"kinds":[1]})"}));  // no since: every event
  const std::uint64_t no_since = key;

  for (std::int64_t at : {t - 500, t - 1, t, t + 1, t + 100, t + 300, t + 301}) {
    INFO("created_at t" << (at - t >= 0 ? "+" : "") << (at - t));
    EventPtr e = test::signed_event(test::alice(), 1, at, "at " + std::to_string(at));
    std::set<std::uint64_t> want{no_since};
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      if (t + offsets[i] <= at) want.insert({2 * i + 1, 2 * i + 2});
    }
    CHECK(matched_set(index, e) == want);
  }
}

// Broken by a match() that hands a subscription over once per matching filter or list.
TEST_CASE("SubscriptionIndex returns a subscription once however many of its filters match",
          "[pipeline][index]") {
  EventPtr e = test::signed_event(test::alice(), 1, test::now(), "many ways", {{"t", "x"}});
  SubscriptionIndex index;
  index.add(make_sub(1, {R"({"ids":[)" + quoted(e->id_hex()) + "]}",
                         R"({"authors":[)" + quoted(to_hex(test::alice().pubkey())) + "]}",
                         R"({"#t":["x"]})", R"({"kinds":[1]})", "{}"}));
  index.add(make_sub(2, {R"({"kinds":[1]})", R"({"kinds":[1,7]})"}));
  index.add(make_sub(3, {R"({"kinds":[7]})"}));
  std::vector<SubPtr> out;
  index.match(*e, 0, out);
  std::vector<std::uint64_t> keys;
  for (const SubPtr& s : out) keys.push_back(s->key);
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::uint64_t>{1, 2});
  // Each call starts afresh, and appends to what `out` holds.
  index.match(*e, 0, out);
  CHECK(out.size() == 4);
}

// Broken by a removal that leaves entries behind in any list, or that removes by filter rather
// than by subscription.
TEST_CASE("SubscriptionIndex removes a subscription from every list it was filed in",
          "[pipeline][index]") {
  EventPtr e = test::signed_event(test::alice(), 1, test::now(), "gone", {{"t", "x"}});
  const std::vector<std::string> everywhere = {
      R"({"ids":[)" + quoted(e->id_hex()) + "]}",
      R"({"authors":[)" + quoted(to_hex(test::alice().pubkey())) + "]}", R"({"#t":["x"]})",
      R"({"kinds":[1]})", "{}"};
  SubscriptionIndex index;
  SubPtr a = make_sub(1, everywhere);
  SubPtr b = make_sub(2, everywhere);  // the same filters, another subscription
  index.add(a);
  index.add(b);
  CHECK(matched_set(index, e) == std::set<std::uint64_t>{1, 2});
  index.remove(a);
  CHECK(index.size() == 1);
  CHECK(matched_set(index, e) == std::set<std::uint64_t>{2});
  index.remove(a);  // twice is harmless
  // Another object with b's key is not b: only the subscription filed is removed.
  index.remove(make_sub(2, everywhere));
  CHECK(matched_set(index, e) == std::set<std::uint64_t>{2});
  index.remove(b);
  CHECK(index.size() == 0);
  CHECK(matched(index, e).empty());
}

// Broken by a key filter rebuilt without the keys still filed: their events would be skipped.
TEST_CASE("SubscriptionIndex keeps matching after many removals rebuild its key filter",
          "[pipeline][index]") {
  SubscriptionIndex index;
  EventPtr e = test::signed_event(test::alice(), 1, test::now(), "still here", {{"t", "keep"}});
  index.add(make_sub(1, {R"({"#t":["keep"]})"}));
  index.add(make_sub(2, {R"({"authors":[)" + quoted(to_hex(test::alice().pubkey())) + "]}"}));
  // Far more keys removed than filed, which makes the index rebuild the filter.
  for (std::uint64_t key = 10; key < 3000; ++key) {
    SubPtr s = make_sub(key, {R"({"#t":["churn)" + std::to_string(key) + R"("]})"});
    index.add(s);
    index.remove(s);
  }
  CHECK(index.size() == 2);
  CHECK(matched_set(index, e) == std::set<std::uint64_t>{1, 2});
  EventPtr churned = test::signed_event(test::bob(), 1, test::now(), "x", {{"t", "churn10"}});
  CHECK(matched(index, churned).empty());
}

// Broken by a subscription going live at the wrong commit, or a stored event delivered live to
// a subscription whose history already holds it (or held back from one whose history does not).
TEST_CASE("SubscriptionIndex skips stored events committed at or before a subscription went live",
          "[pipeline][index]") {
  EventPtr e = test::signed_event(test::alice(), 1, test::now(), "seq rule");
  SubscriptionIndex index;
  SubPtr early = make_sub(1, {"{}"});
  CHECK(index.add(early) == 0);
  CHECK(early->live_from == 0);

  index.set_committed(10);
  SubPtr late = make_sub(2, {"{}"});
  CHECK(index.add(late) == 10);
  CHECK(late->live_from == 10);

  CHECK(matched_set(index, e, 10) == std::set<std::uint64_t>{1});  // late's history has it
  CHECK(matched_set(index, e, 11) == std::set<std::uint64_t>{1, 2});
  CHECK(matched_set(index, e, 0) == std::set<std::uint64_t>{1, 2});  // ephemeral: never stored

  // The committed sequence never moves back.
  index.set_committed(5);
  SubPtr later = make_sub(3, {"{}"});
  CHECK(index.add(later) == 10);
  index.set_committed(12);
  SubPtr last = make_sub(4, {"{}"});
  CHECK(index.add(last) == 12);
  CHECK(matched_set(index, e, 12) == std::set<std::uint64_t>{1, 2, 3});
}

// Broken by a search filter filed under a word the event's content is not looked up by (case,
// diacritics), by a search that is not checked once found (every word must occur), or by a
// removal that misses the word list.
TEST_CASE("SubscriptionIndex matches search filters by the words of the content",
          "[pipeline][index]") {
  const std::int64_t t = test::now();
  EventPtr cafe = test::signed_event(test::alice(), 1, t, "Le CAFÉ est fermé aujourd'hui");
  EventPtr other = test::signed_event(test::bob(), 1, t, "cafeteria closed");
  EventPtr reaction = test::signed_event(test::bob(), 7, t, "cafe ferme");
  SubscriptionIndex index;
  SubPtr one_word = make_sub(1, {R"({"search":"cafe"})"});
  SubPtr two_words = make_sub(2, {R"({"search":"ferme café"})"});
  SubPtr missing_word = make_sub(3, {R"({"search":"cafe ouvert"})"});
  SubPtr with_kind = make_sub(4, {R"({"kinds":[1],"search":"Cafe language:fr"})"});
  SubPtr no_words = make_sub(5, {R"({"search":"\"(*)\""})", R"({"search":""})"});
  SubPtr author = make_sub(
      6, {R"({"authors":[)" + quoted(to_hex(test::bob().pubkey())) + R"(],"search":"closed"})"});
  for (const SubPtr& s : {one_word, two_words, missing_word, with_kind, no_words, author}) {
    index.add(s);
  }
  CHECK(matched_set(index, cafe) == std::set<std::uint64_t>{1, 2, 4});
  CHECK(matched_set(index, other) == std::set<std::uint64_t>{6});
  CHECK(matched_set(index, reaction) == std::set<std::uint64_t>{1, 2});
  index.remove(one_word);
  index.remove(no_words);
  CHECK(matched_set(index, cafe) == std::set<std::uint64_t>{2, 4});
  index.remove(two_words);
  index.remove(with_kind);
  CHECK(matched(index, cafe).empty());
}
