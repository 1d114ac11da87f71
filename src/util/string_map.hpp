// Maps keyed by std::string that are looked up by std::string_view, so that a lookup on a hot
// path builds no key string (and allocates nothing) to find an entry.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace relaycore {

struct StringViewHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view v) const noexcept {
    return std::hash<std::string_view>()(v);
  }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringViewHash, std::equal_to<>>;

}  // namespace relaycore
