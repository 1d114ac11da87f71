#include "protocol/json_writer.hpp"

#include <bit>
#include <charconv>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "relaycore/hex.hpp"
#include "relaycore/message.hpp"

namespace relaycore::json {
namespace {

// The escape for byte c, or 0 when c needs none (or needs the \u00xx form).
char short_escape(unsigned char c) noexcept {
  switch (c) {
    case '"':
      return '"';
    case '\\':
      return '\\';
    case '\n':
      return 'n';
    case '\r':
      return 'r';
    case '\t':
      return 't';
    case '\b':
      return 'b';
    case '\f':
      return 'f';
    default:
      return 0;
  }
}

bool needs_escape(unsigned char c) noexcept { return c < 0x20 || c == '"' || c == '\\'; }

// Block-at-a-time scanning: content and tag values rarely need escapes, so most blocks are
// copied or counted after one test instead of one per byte. candidates() returns a bit per byte
// of the block that may need an escape; callers re-check each set bit with needs_escape().
// With SSE2 (every x86-64) the bits are exact over 16 bytes; the portable fallback tests an
// 8-byte word and returns every bit when any byte matches.
#if defined(__SSE2__)
constexpr std::size_t kBlock = 16;

unsigned candidates(const char* p) noexcept {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
  const __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
  // Below 0x20 (unsigned) exactly when the top three bits are clear.
  const __m128i control =
      _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8(static_cast<char>(0xe0))), _mm_setzero_si128());
  return static_cast<unsigned>(
      _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)));
}
#else
constexpr std::size_t kBlock = 8;

unsigned candidates(const char* p) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHighBits = 0x8080808080808080ull;
  std::uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  auto has_zero_byte = [](std::uint64_t x) { return ((x - kOnes) & ~x & kHighBits) != 0; };
  // Exact for "some byte is below 0x20" (the bit hack holds for bounds up to 0x80).
  const bool control = ((w - kOnes * 0x20) & ~w & kHighBits) != 0;
  const bool any = control || has_zero_byte(w ^ (kOnes * '"')) || has_zero_byte(w ^ (kOnes * '\\'));
  return any ? 0xffu : 0u;
}
#endif

// Appends the escape for a byte that needs one.
void append_escape(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char e = short_escape(c);
  if (e != 0) {
    const char two[2] = {'\\', e};
    out.append(two, sizeof(two));
  } else {
    const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
    out.append(u, sizeof(u));
  }
}

// Extra bytes the escape of c takes beyond c itself; 0 when it needs none.
std::size_t escape_growth(unsigned char c) noexcept {
  if (!needs_escape(c)) return 0;
  return short_escape(c) != 0 ? 1 : 5;
}

}  // namespace

std::size_t quoted_size(std::string_view s) noexcept {
  std::size_t n = 2 + s.size();
  const char* p = s.data();
  const char* const end = p + s.size();
  for (; static_cast<std::size_t>(end - p) >= kBlock; p += kBlock) {
    for (unsigned m = candidates(p); m != 0; m &= m - 1) {
      n += escape_growth(static_cast<unsigned char>(p[std::countr_zero(m)]));
    }
  }
  for (; p != end; ++p) n += escape_growth(static_cast<unsigned char>(*p));
  return n;
}

void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  const char* p = s.data();
  const char* const end = p + s.size();
  const char* run = p;  // start of the bytes not yet appended
  auto escape_at = [&](const char* q) {
    auto c = static_cast<unsigned char>(*q);
    if (!needs_escape(c)) return;
    out.append(run, static_cast<std::size_t>(q - run));
    run = q + 1;
    append_escape(out, c);
  };
  for (; static_cast<std::size_t>(end - p) >= kBlock; p += kBlock) {
    for (unsigned m = candidates(p); m != 0; m &= m - 1) escape_at(p + std::countr_zero(m));
  }
  for (; p != end; ++p) escape_at(p);
  out.append(run, static_cast<std::size_t>(end - run));
  out.push_back('"');
}

void append_int(std::string& out, std::int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_uint(std::string& out, std::uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_hex_string(std::string& out, const std::uint8_t* data, std::size_t size) {
  out.push_back('"');
  std::size_t at = out.size();
  out.resize(at + 2 * size);
  hex_encode(data, size, out.data() + at);
  out.push_back('"');
}

}  // namespace relaycore::json

namespace relaycore {

void append_json_string(std::string& out, std::string_view s) { json::append_string(out, s); }

}  // namespace relaycore
