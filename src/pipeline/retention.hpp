// Retention on the writer: each step() selects at most one batch of events the rules remove,
// through the storage's ordinary reads, and removes them with Storage::erase, so that every
// storage gets the same rules without code of its own. A check of the rules runs through them
// in turn (ages, then authors, then size) over as many steps as it takes, and the next check
// starts RetentionRules::interval_seconds after one finds nothing left to do.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <vector>

#include "relaycore/filter.hpp"
#include "relaycore/retention.hpp"
#include "relaycore/storage.hpp"
#include "util/log.hpp"

namespace relaycore::pipeline {

// The read an age rule's step runs for the kinds first..last of its range (at most 256 of
// them): its events created more than max_age_seconds before `now`.
Filter age_filter(const MaxAgeRule& rule, std::uint32_t first, std::uint32_t last,
                  std::int64_t now);

// The read a per-author rule runs for one author: their events of the rule's kinds.
Filter author_filter(const MaxPerAuthorRule& rule, const Pubkey& author);

// [Threading] Used by the writer thread only, as the storage's write calls are.
class Retention {
 public:
  using Clock = std::chrono::steady_clock;

  Retention(Storage& storage, const Log& log) : storage_(storage), log_(log) {}

  // One bounded step: removes at most rules.batch_size events and runs at most that many
  // queries, then returns what it removed (reason kRetention, with the rule). `now` is unix
  // seconds, for ages; `clock` schedules the checks. New rules start a new check at once.
  Result<std::vector<RemovedEvent>> step(const RetentionRules& rules, std::int64_t now,
                                         Clock::time_point clock);

  // True while a check is under way: the next step() has work to do now.
  bool pending() const noexcept { return phase_ != Phase::kIdle; }

 private:
  enum class Phase : std::uint8_t { kIdle, kAge, kAuthors, kSize };

  // Each phase's step; `out` gets what it removed. Advances the phase when it is done.
  Status age_step(std::int64_t now, std::vector<RemovedEvent>& out);
  Status authors_step(std::vector<RemovedEvent>& out);
  Status size_step(std::vector<RemovedEvent>& out);
  // Erases `ids` and appends them to `out` as removed by `rule`.
  Status remove(const std::vector<EventId>& ids, RetentionRule rule,
                std::vector<RemovedEvent>& out);
  // Moves to the phase after `phase_`.
  void next_phase();

  Storage& storage_;
  const Log& log_;
  RetentionRules rules_;
  Phase phase_ = Phase::kIdle;
  Clock::time_point next_check_{};

  // The age phase's place: the rule, and the first kind of the chunk of its range to read next.
  std::size_t age_rule_ = 0;
  std::uint32_t age_kind_ = 0;

  // Authors whose events of a per-author rule's kinds have come in since they were checked,
  // found by reading every stored event once, in commit order, up to author_seq_.
  std::set<Pubkey> authors_;
  std::uint64_t author_seq_ = 0;

  // Every regular event committed at or before size_seq_ has been removed for size, so the
  // next removal for size looks after it.
  std::uint64_t size_seq_ = 0;
  // Whether the relay has logged that it cannot apply the size limit (once is enough).
  bool size_warned_ = false;
};

}  // namespace relaycore::pipeline
