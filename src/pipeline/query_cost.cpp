#include "pipeline/query_cost.hpp"

#include <algorithm>

#include "pipeline/neg_session.hpp"
#include "pipeline/subscription.hpp"

namespace relaycore::pipeline {

bool expensive(const Filter& filter, bool counting) {
  // Ids are looked up one by one, whatever else the filter says.
  if (filter.ids) return false;
  if (filter.search) return true;
  auto longer = [](const auto& list) { return list && list->size() > kCheapListValues; };
  if (longer(filter.authors) || longer(filter.kinds)) return true;
  for (const TagCondition& cond : filter.tags) {
    if (cond.values.size() > kCheapListValues) return true;
  }
  // History walks an index newest first and stops at the limit; a count visits every match,
  // and with no condition that is every event.
  return counting && !filter.authors && !filter.kinds && filter.tags.empty();
}

bool expensive(const QueryJob& job) {
  if (const auto* history = std::get_if<HistoryJob>(&job)) {
    const std::vector<Filter>& filters = history->sub->filters;
    return std::any_of(filters.begin(), filters.end(),
                       [](const Filter& f) { return expensive(f, false); });
  }
  // A sync's first job reads every record its filter matches.
  if (const auto* neg = std::get_if<NegJob>(&job)) return !neg->session->neg;
  const std::vector<Filter>& filters = std::get<CountJob>(job).filters;
  return std::any_of(filters.begin(), filters.end(),
                     [](const Filter& f) { return expensive(f, true); });
}

}  // namespace relaycore::pipeline
