#include "relaycore/hex.hpp"

#include <array>
#include <cstring>

namespace relaycore {
namespace {

// Both directions go through tables: ids, keys and signatures are decoded from every event a
// client sends and encoded into every canonical form, so a branch per character shows up.

// The two digits of each byte value, "000102...feff".
constexpr auto kPairs = [] {
  constexpr char digits[] = "0123456789abcdef";
  std::array<char, 512> t{};
  for (std::size_t b = 0; b < 256; ++b) {
    t[2 * b] = digits[b >> 4];
    t[2 * b + 1] = digits[b & 0xf];
  }
  return t;
}();

// The value of each character as a hex digit, or 0xff for anything but 0-9 and a-f: NIP-01
// allows lowercase only.
constexpr auto kNibbles = [] {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = 0xff;
  for (int c = '0'; c <= '9'; ++c)
    t[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) {
    t[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c - 'a' + 10);
  }
  return t;
}();

}  // namespace

void hex_encode(const std::uint8_t* data, std::size_t size, char* out) noexcept {
  for (std::size_t i = 0; i < size; ++i) std::memcpy(out + 2 * i, &kPairs[2 * data[i]], 2);
}

bool hex_decode(std::string_view hex, std::uint8_t* out, std::size_t size) noexcept {
  if (hex.size() != 2 * size) return false;
  // Invalid digits are collected and checked once at the end instead of per character.
  unsigned bad = 0;
  for (std::size_t i = 0; i < size; ++i) {
    const unsigned hi = kNibbles[static_cast<unsigned char>(hex[2 * i])];
    const unsigned lo = kNibbles[static_cast<unsigned char>(hex[2 * i + 1])];
    bad |= hi | lo;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return (bad & 0xf0) == 0;
}

}  // namespace relaycore
