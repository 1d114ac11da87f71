// Which queries are expensive: those no index can serve in result order, so that storage reads
// (or sorts) every match before it returns the first. One such statement cannot be cut into
// time slices, so the scheduler runs fewer of them at once than it has readers, and cheap
// queries always find a reader free.
#pragma once

#include <vector>

#include "pipeline/jobs.hpp"
#include "relaycore/filter.hpp"

namespace relaycore::pipeline {

// Lists longer than this make a filter expensive: each value is its own index range, and the
// ranges' matches are sorted together.
constexpr std::size_t kCheapListValues = 16;

// True when reading `filter` (for history, or for a count) may take many rows.
bool expensive(const Filter& filter, bool counting);

// True when the job has an expensive filter.
bool expensive(const QueryJob& job);

}  // namespace relaycore::pipeline
