// NIP-50 search text: how content and queries become words. Every storage and the live
// subscription matcher use these, so a search finds the same events in history and live.
//
// The tokenizer is SQLite FTS5's "unicode61 remove_diacritics 2", the one the SQLite storage
// indexes content with, called directly rather than re-implemented: a word is a run of Unicode
// letters, digits and private-use characters; words are case-folded and lose their diacritics
// (Latin and others with a decomposition: "Café" and "cafe" are one word). Everything else
// separates words.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace relaycore::search {

// The words of `text`, in order, repeats included.
std::vector<std::string> words(std::string_view text);

// The words of a NIP-50 query, without repeats, in first-appearance order. The query is split
// at ASCII whitespace; a piece of the form key:value (NIP-50 extensions such as
// "language:en" or "include:spam") is ignored, since relaycore supports none; the rest is
// tokenized as words. Nothing in the query is syntax: quotes, *, AND, OR, NOT, NEAR and
// parentheses are words or separators like any other text. An empty result (an empty query,
// only punctuation, only extensions) matches no event.
std::vector<std::string> query_words(std::string_view query);

// How often each query word occurs in `content`, summed: the score the memory storage ranks by.
// 0 unless every query word occurs (and for an empty query).
std::size_t term_frequency(const std::vector<std::string>& query, std::string_view content);

// One content's words as a ranking needs them: how often each query word occurs (in query
// order) and how many words there are in all.
struct WordCounts {
  std::vector<std::uint32_t> hits;
  std::uint32_t length = 0;
};

WordCounts count_words(const std::vector<std::string>& query, std::string_view content);

// The weight of a word found in `matching` of `documents` events: rarer words weigh more
// (BM25's inverse document frequency, always above 0).
double word_weight(double documents, double matching) noexcept;

// Each document's BM25 score for a query whose words weigh `weights` (word_weight, one per
// query word, in query order): per word, its weight times its count in the document, saturated
// (k1 = 1.2) and scaled down for documents longer than the average of `docs` (b = 0.75); summed
// over the words. Higher is better.
std::vector<double> bm25(const std::vector<WordCounts>& docs, const std::vector<double>& weights);

// True when every query word occurs among `content_words` (sorted), and the query is not empty.
bool contains_all(const std::vector<std::string>& query,
                  const std::vector<std::string>& content_words);

// The FTS5 MATCH expression for the words: each one a quoted string, so that FTS5 reads
// them as plain terms ANDed together and never as operators or column filters.
std::string fts5_expression(const std::vector<std::string>& words);

}  // namespace relaycore::search
