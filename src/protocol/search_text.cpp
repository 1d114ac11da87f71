#include "protocol/search_text.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <memory>

namespace relaycore::search {
namespace {

// FTS5's unicode61 tokenizer, found through an in-memory connection that stays open for the
// life of the process (the tokenizer's functions belong to it). Never destroyed: tokenizers on
// other threads may outlive static destruction.
struct Fts5Tokenizers {
  sqlite3* db = nullptr;
  fts5_tokenizer unicode61{};
  void* context = nullptr;
  bool ok = false;

  Fts5Tokenizers() {
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      return;
    }
    fts5_api* api = nullptr;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, nullptr) == SQLITE_OK) {
      sqlite3_bind_pointer(stmt, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
      sqlite3_step(stmt);
    }
    sqlite3_finalize(stmt);
    ok = api != nullptr &&
         api->xFindTokenizer(api, "unicode61", &context, &unicode61) == SQLITE_OK &&
         unicode61.xCreate != nullptr && unicode61.xTokenize != nullptr;
  }
};

const Fts5Tokenizers& tokenizers() {
  static const Fts5Tokenizers* const t = new Fts5Tokenizers();
  return *t;
}

// One tokenizer per thread: a unicode61 instance keeps a folding buffer, so calls on one
// instance must not overlap.
class ThreadTokenizer {
 public:
  ThreadTokenizer() {
    const Fts5Tokenizers& t = tokenizers();
    if (!t.ok) std::abort();  // FTS5 is compiled into every SQLite relaycore builds with
    const char* args[] = {"remove_diacritics", "2"};
    if (t.unicode61.xCreate(t.context, args, 2, &tok_) != SQLITE_OK) std::abort();
  }
  ~ThreadTokenizer() { tokenizers().unicode61.xDelete(tok_); }
  ThreadTokenizer(const ThreadTokenizer&) = delete;
  ThreadTokenizer& operator=(const ThreadTokenizer&) = delete;

  template <typename F>
  void run(std::string_view text, F& f) {
    auto call = [](void* ctx, int, const char* token, int n, int, int) -> int {
      (*static_cast<F*>(ctx))(std::string_view(token, static_cast<std::size_t>(n)));
      return SQLITE_OK;
    };
    const int n = static_cast<int>(std::min<std::size_t>(text.size(), INT_MAX));
    tokenizers().unicode61.xTokenize(tok_, &f, FTS5_TOKENIZE_DOCUMENT, text.data(), n, call);
  }

 private:
  Fts5Tokenizer* tok_ = nullptr;
};

template <typename F>
void for_each_word(std::string_view text, F f) {
  thread_local ThreadTokenizer tokenizer;
  tokenizer.run(text, f);
}

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// NIP-50's key:value: a key of ASCII letters, digits, '_' or '-', a colon, and a value. A value
// starting with '/' is not one (the piece is a URL such as https://example.com, searched as
// its words).
bool is_extension(std::string_view piece) noexcept {
  const std::size_t colon = piece.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon + 1 == piece.size()) return false;
  if (piece[colon + 1] == '/') return false;
  return std::all_of(piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

}  // namespace

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  for_each_word(text, [&out](std::string_view w) { out.emplace_back(w); });
  return out;
}

std::vector<std::string> query_words(std::string_view query) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < query.size()) {
    while (i < query.size() && is_space(query[i])) ++i;
    std::size_t end = i;
    while (end < query.size() && !is_space(query[end])) ++end;
    const std::string_view piece = query.substr(i, end - i);
    i = end;
    if (piece.empty() || is_extension(piece)) continue;
    for_each_word(piece, [&out](std::string_view w) {
      if (std::find(out.begin(), out.end(), w) == out.end()) out.emplace_back(w);
    });
  }
  return out;
}

std::size_t term_frequency(const std::vector<std::string>& query, std::string_view content) {
  if (query.empty()) return 0;
  std::size_t total = 0;
  for (std::uint32_t h : count_words(query, content).hits) {
    if (h == 0) return 0;
    total += h;
  }
  return total;
}

WordCounts count_words(const std::vector<std::string>& query, std::string_view content) {
  WordCounts counts;
  counts.hits.assign(query.size(), 0);
  for_each_word(content, [&](std::string_view w) {
    ++counts.length;
    for (std::size_t q = 0; q < query.size(); ++q) {
      if (query[q] == w) ++counts.hits[q];
    }
  });
  return counts;
}

double word_weight(double documents, double matching) noexcept {
  return std::log(1.0 + (documents - matching + 0.5) / (matching + 0.5));
}

std::vector<double> bm25(const std::vector<WordCounts>& docs, const std::vector<double>& weights) {
  constexpr double kK1 = 1.2;
  constexpr double kB = 0.75;
  double total_length = 0;
  for (const WordCounts& d : docs) total_length += d.length;
  const double average =
      docs.empty() ? 1.0 : std::max(1.0, total_length / static_cast<double>(docs.size()));
  std::vector<double> scores;
  scores.reserve(docs.size());
  for (const WordCounts& d : docs) {
    const double norm = kK1 * (1.0 - kB + kB * static_cast<double>(d.length) / average);
    double score = 0;
    for (std::size_t q = 0; q < d.hits.size() && q < weights.size(); ++q) {
      const double tf = static_cast<double>(d.hits[q]);
      score += weights[q] * tf * (kK1 + 1.0) / (tf + norm);
    }
    scores.push_back(score);
  }
  return scores;
}

bool contains_all(const std::vector<std::string>& query,
                  const std::vector<std::string>& content_words) {
  if (query.empty()) return false;
  return std::all_of(query.begin(), query.end(), [&](const std::string& w) {
    return std::binary_search(content_words.begin(), content_words.end(), w);
  });
}

std::string fts5_expression(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out.push_back(' ');
    out.push_back('"');
    for (char c : w) {
      if (c == '"') out.push_back('"');  // words never hold one; doubled as FTS5 escapes it
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out;
}

}  // namespace relaycore::search
