// The relevance score SQLite ranks search matches by (protocol/search_text.hpp): what it rewards
// and what it does not, independent of any storage.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/search_text.hpp"

using namespace relaycore;

namespace {

std::vector<double> scores(const std::vector<std::string>& query,
                           const std::vector<std::string>& contents,
                           const std::vector<double>& weights) {
  std::vector<search::WordCounts> docs;
  for (const std::string& c : contents) docs.push_back(search::count_words(query, c));
  return search::bm25(docs, weights);
}

}  // namespace

// Broken if words are counted differently from how they are matched (case, diacritics), or if
// the length is not every word of the content.
TEST_CASE("search: count_words counts each query word and the content's length", "[search]") {
  const search::WordCounts c =
      search::count_words({"nostr", "cafe"}, "Nostr, NOSTR and a Café: nostr!");
  CHECK(c.hits == std::vector<std::uint32_t>{3, 1});
  CHECK(c.length == 6);
  CHECK(search::term_frequency({"nostr", "cafe"}, "Nostr, NOSTR and a Café: nostr!") == 4);
  CHECK(search::term_frequency({"nostr", "absent"}, "nostr nostr") == 0);
}

// Broken by a score that ignores occurrences, length, or word rarity, or that grows without
// bound with repetition (a note repeating a word 100 times would then beat everything).
TEST_CASE("search: bm25 rewards occurrences and rare words, not length or repetition", "[search]") {
  const std::vector<double> even = {1.0};
  // More occurrences in content of the same length score higher.
  const auto more = scores({"zap"}, {"zap zap a b", "zap a b c"}, even);
  CHECK(more[0] > more[1]);
  // The same occurrences in longer content score lower.
  const auto longer = scores({"zap"}, {"zap a", "zap a b c d e f g h i"}, even);
  CHECK(longer[0] > longer[1]);
  // Repetition saturates: 50 occurrences score less than twice 5.
  std::string fifty, five;
  for (int i = 0; i < 50; ++i) fifty += "zap ";
  for (int i = 0; i < 5; ++i) five += "zap ";
  const auto repeated = scores({"zap"}, {fifty, five}, even);
  CHECK(repeated[0] < 2 * repeated[1]);

  // A word in few events weighs more than one in most of them.
  const double rare = search::word_weight(1000000, 100);
  const double common = search::word_weight(1000000, 900000);
  CHECK(rare > common);
  CHECK(common > 0);
  // So twice the rare word beats twice the common one.
  const auto weighted =
      scores({"rare", "common"}, {"rare rare common x", "rare common common x"}, {rare, common});
  CHECK(weighted[0] > weighted[1]);
}
