// Small text helpers for headers, lists and settings.
#pragma once

#include <string_view>

namespace relaycore {

// `s` without the characters of `blanks` at either end. The default is HTTP's optional white
// space (a space or a tab).
inline std::string_view trim(std::string_view s, std::string_view blanks = " \t") noexcept {
  const std::size_t first = s.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(blanks) - first + 1);
}

// `c` in lowercase if it is an ASCII letter, whatever the locale.
inline char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace relaycore
