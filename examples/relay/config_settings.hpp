// The table behind config.cpp: every setting of relaycore-relay, how its value is read, and
// where it goes in the Config. A new flag or key is one row here.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace relaycore::relay_example {

// Sets a value in the Config from its text; returns what is wrong with it, or "".
using Apply = std::function<std::string(Config&, std::string_view)>;

struct Setting {
  SettingInfo info;
  Apply apply;
};

// Every setting, in the order they are applied (see SettingInfo for the public view).
const std::vector<Setting>& settings();

}  // namespace relaycore::relay_example
