// Malformed-input cases: see the table below.
#include <catch2/catch.hpp>
