// Retention rules: how long, how many and how much the relay keeps. The writer applies them in
// its idle time, in bounded batches, so that ingest never waits long behind them; each event a
// rule removes is audited (retention_max_age, retention_max_per_author, retention_max_bytes)
// and reaches the change listeners with RemovalReason::kRetention.
#pragma once

#include <cstdint>
#include <vector>

#include "relaycore/export.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

// The kinds from `first` to `last`, both included.
struct KindRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;

  bool contains(std::uint16_t kind) const noexcept { return kind >= first && kind <= last; }
  friend bool operator==(const KindRange&, const KindRange&) = default;
};

// Events of these kinds older than max_age_seconds (by created_at) are removed. Kinds no rule
// names are kept forever.
struct MaxAgeRule {
  KindRange kinds;
  std::int64_t max_age_seconds = 0;
  friend bool operator==(const MaxAgeRule&, const MaxAgeRule&) = default;
};

// Each author keeps only their newest max_events events of these kinds (taken together); older
// ones are removed. At most kMaxPerAuthorKinds kinds in all.
struct MaxPerAuthorRule {
  std::vector<KindRange> kinds;
  std::uint32_t max_events = 0;
  friend bool operator==(const MaxPerAuthorRule&, const MaxPerAuthorRule&) = default;
};

// Most kinds one MaxPerAuthorRule may name: the rule reads an author's events of all of them in
// one query, which SQLite serves as one index scan per kind.
inline constexpr std::uint32_t kMaxPerAuthorKinds = 256;

struct RetentionRules {
  std::vector<MaxAgeRule> max_age;
  std::vector<MaxPerAuthorRule> max_per_author;
  // When the stored events' JSON adds up to more than this many bytes (Storage::size_bytes),
  // the oldest regular events are removed first: those stored first (lowest commit sequence)
  // go until their JSON adds up to the excess, so the total ends at most one event below the
  // limit. Replaceable and addressable events are never removed for size: they hold an
  // author's current state (a profile, a follow list), one version per slot. The files take a
  // multiple of this (indexes, tags, the search index). 0: no limit.
  std::uint64_t max_bytes = 0;
  // Most events one batch removes; the writer takes new events again between batches. A batch
  // of 128 takes the SQLite writer a few milliseconds. At least 1. Default: 128.
  std::uint32_t batch_size = 128;
  // How often the rules are checked, in seconds, when the last check left nothing to remove.
  // At least 1. Default: 60.
  std::uint32_t interval_seconds = 60;

  // True when no rule is set.
  bool empty() const noexcept {
    return max_age.empty() && max_per_author.empty() && max_bytes == 0;
  }
  friend bool operator==(const RetentionRules&, const RetentionRules&) = default;
};

// Ok, or "invalid: ..." naming what is wrong: a range whose first kind is above its last, a
// negative age, a per-author rule without kinds or with more than kMaxPerAuthorKinds, a
// batch_size or interval_seconds of 0.
RELAYCORE_API Status validate_retention(const RetentionRules& rules);

}  // namespace relaycore
