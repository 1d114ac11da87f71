#include "pipeline/retention.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "relaycore/filter.hpp"

namespace relaycore {

Status validate_retention(const RetentionRules& rules) {
  auto bad_range = [](const KindRange& r) { return r.first > r.last; };
  for (const MaxAgeRule& rule : rules.max_age) {
    if (bad_range(rule.kinds)) {
      return Status::invalid("retention: max-age kinds " + std::to_string(rule.kinds.first) + "-" +
                             std::to_string(rule.kinds.last) + " run backwards");
    }
    if (rule.max_age_seconds < 0) return Status::invalid("retention: max-age is negative");
  }
  for (const MaxPerAuthorRule& rule : rules.max_per_author) {
    if (rule.kinds.empty()) return Status::invalid("retention: a max-per-author rule has no kinds");
    std::uint64_t kinds = 0;
    for (const KindRange& r : rule.kinds) {
      if (bad_range(r)) {
        return Status::invalid("retention: max-per-author kinds " + std::to_string(r.first) + "-" +
                               std::to_string(r.last) + " run backwards");
      }
      kinds += std::uint64_t{r.last} - r.first + 1;
    }
    if (kinds > kMaxPerAuthorKinds) {
      return Status::invalid("retention: a max-per-author rule names more than " +
                             std::to_string(kMaxPerAuthorKinds) + " kinds");
    }
  }
  if (rules.batch_size == 0) return Status::invalid("retention: batch_size is 0");
  if (rules.interval_seconds == 0) return Status::invalid("retention: interval_seconds is 0");
  return Status::ok();
}

namespace pipeline {
namespace {

// Most kinds one query of an age rule names: a wide range is read a chunk at a time, each
// small enough for SQLite to serve as one index scan per kind, merged. Each scan seeks to the
// kind's events older than the age, so a check costs the same however many younger events the
// store holds. One read of the whole range (kind BETWEEN first AND last) would be a single
// statement, but SQLite cannot seek on created_at behind a range of kinds: it walks every
// index entry of the range, young ones included, so each check would read all the stored
// events of those kinds.
constexpr std::uint32_t kKindsPerQuery = kMaxPerAuthorKinds;

// How many events a step reads through, in commit order, per event it may remove: the author
// and size phases skip events no rule applies to, and this bounds the skipping too.
constexpr std::size_t kScanPerRemoval = 4;

// The kinds of `ranges`, each once, ascending.
std::vector<std::uint16_t> kinds_of(const std::vector<KindRange>& ranges) {
  std::vector<std::uint16_t> kinds;
  for (const KindRange& r : ranges) {
    for (std::uint32_t k = r.first; k <= r.last; ++k) {
      kinds.push_back(static_cast<std::uint16_t>(k));
    }
  }
  std::sort(kinds.begin(), kinds.end());
  kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
  return kinds;
}

// A read of every stored event, expired or not: retention removes what its rules name
// whatever else would remove it later.
QueryRequest retention_request(std::uint64_t limit) {
  QueryRequest request;
  request.now = std::numeric_limits<std::int64_t>::min();
  request.max_limit = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(limit, std::numeric_limits<std::uint32_t>::max()));
  return request;
}

}  // namespace

Filter age_filter(const MaxAgeRule& rule, std::uint32_t first, std::uint32_t last,
                  std::int64_t now) {
  Filter filter;
  filter.kinds =
      kinds_of({KindRange{static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)}});
  // Older than max_age_seconds: created before now - max_age_seconds. Both are at least 0, so
  // this cannot overflow.
  filter.until = now - rule.max_age_seconds - 1;
  return filter;
}

Filter author_filter(const MaxPerAuthorRule& rule, const Pubkey& author) {
  Filter filter;
  filter.authors = std::vector<Pubkey>{author};
  filter.kinds = kinds_of(rule.kinds);
  return filter;
}

Result<std::vector<RemovedEvent>> Retention::step(const RetentionRules& rules, std::int64_t now,
                                                  Clock::time_point clock) {
  std::vector<RemovedEvent> out;
  if (!(rules == rules_)) {
    // New rules: a check starts at once, and the authors are all looked at again. size_seq_
    // stays: what it passed was removed, whatever the rules are now.
    rules_ = rules;
    phase_ = Phase::kIdle;
    next_check_ = clock;
    authors_.clear();
    author_seq_ = 0;
  }
  if (rules_.empty()) {
    phase_ = Phase::kIdle;
    return out;
  }
  if (phase_ == Phase::kIdle) {
    if (clock < next_check_) return out;
    phase_ = Phase::kAge;
    age_rule_ = 0;
    age_kind_ = 0;
  }
  Status s;
  switch (phase_) {
    case Phase::kAge:
      s = age_step(now, out);
      break;
    case Phase::kAuthors:
      s = authors_step(out);
      break;
    case Phase::kSize:
      s = size_step(out);
      break;
    case Phase::kIdle:
      break;
  }
  // A failed step ends the check; the next one tries again after the interval.
  if (!s) phase_ = Phase::kIdle;
  if (phase_ == Phase::kIdle) next_check_ = clock + std::chrono::seconds(rules_.interval_seconds);
  if (!s) return s;
  return out;
}

void Retention::next_phase() {
  switch (phase_) {
    case Phase::kAge:
      phase_ = Phase::kAuthors;
      break;
    case Phase::kAuthors:
      phase_ = Phase::kSize;
      break;
    case Phase::kSize:
    case Phase::kIdle:
      phase_ = Phase::kIdle;
      break;
  }
}

Status Retention::age_step(std::int64_t now, std::vector<RemovedEvent>& out) {
  if (age_rule_ >= rules_.max_age.size()) {
    next_phase();
    return Status::ok();
  }
  const MaxAgeRule& rule = rules_.max_age[age_rule_];
  const std::uint32_t first = std::max<std::uint32_t>(age_kind_, rule.kinds.first);
  const std::uint32_t last = std::min<std::uint32_t>(rule.kinds.last, first + kKindsPerQuery - 1);
  std::vector<EventId> ids;
  Status s = storage_.query(age_filter(rule, first, last, now),
                            retention_request(rules_.batch_size), [&](const StoredEvent& e) {
                              ids.push_back(e.event->id());
                              return true;
                            });
  if (!s) return s;
  if (s = remove(ids, RetentionRule::kMaxAge, out); !s) return s;
  // Fewer than a batch: this chunk holds no more; on to the next chunk, or the next rule.
  if (ids.size() < rules_.batch_size) {
    if (last >= rule.kinds.last) {
      ++age_rule_;
      age_kind_ = 0;
    } else {
      age_kind_ = last + 1;
    }
  }
  return Status::ok();
}

Status Retention::authors_step(std::vector<RemovedEvent>& out) {
  if (rules_.max_per_author.empty()) {
    next_phase();
    return Status::ok();
  }
  const std::size_t batch = rules_.batch_size;
  if (authors_.empty()) {
    // Reads on through the events committed since the last look, noting their authors.
    const std::size_t scan = batch * kScanPerRemoval;
    std::size_t seen = 0;
    std::uint64_t last = author_seq_;
    Status s = storage_.scan_since(author_seq_, [&](const StoredEvent& e) {
      last = e.seq;
      const std::uint16_t kind = e.event->kind();
      for (const MaxPerAuthorRule& rule : rules_.max_per_author) {
        if (std::any_of(rule.kinds.begin(), rule.kinds.end(),
                        [&](const KindRange& r) { return r.contains(kind); })) {
          authors_.insert(e.event->pubkey());
          break;
        }
      }
      return ++seen < scan;
    });
    if (!s) return s;
    author_seq_ = last;
    // Caught up, with nobody to check: this phase is done.
    if (seen < scan && authors_.empty()) next_phase();
    return Status::ok();
  }
  // Each author's newest max_events + room keys of a rule's kinds, read from an index without
  // the events; those before the newest max_events go.
  std::vector<EventId> ids;
  std::size_t queries = 0;
  while (!authors_.empty() && queries < batch && ids.size() < batch) {
    const Pubkey author = *authors_.begin();
    bool more = false;
    for (const MaxPerAuthorRule& rule : rules_.max_per_author) {
      const std::size_t room = batch - ids.size();
      if (room == 0) {
        more = true;
        break;
      }
      const std::uint64_t wanted = std::uint64_t{rule.max_events} + room;
      std::vector<EventId> oldest_first;
      Status s = storage_.scan_keys(author_filter(rule, author), retention_request(wanted),
                                    [&](const EventKey& key) {
                                      oldest_first.push_back(key.id);
                                      return true;
                                    });
      if (!s) return s;
      ++queries;
      if (oldest_first.size() > rule.max_events) {
        ids.insert(ids.end(), oldest_first.begin(),
                   oldest_first.end() - static_cast<std::ptrdiff_t>(rule.max_events));
      }
      // A full read may have left older events behind: the author is checked again.
      if (oldest_first.size() == wanted) more = true;
    }
    if (!more) authors_.erase(authors_.begin());
  }
  return remove(ids, RetentionRule::kMaxPerAuthor, out);
}

Status Retention::size_step(std::vector<RemovedEvent>& out) {
  if (rules_.max_bytes == 0) {
    next_phase();
    return Status::ok();
  }
  Result<std::uint64_t> size = storage_.size_bytes();
  if (!size) {
    if (!size_warned_) {
      log_.failure(LogLevel::kWarn, "retention: max-bytes is not applied", size.error().message());
    }
    size_warned_ = true;
    next_phase();
    return Status::ok();
  }
  // The measure drops by each removed event's JSON, so measuring again at every step stops
  // the removal at the limit.
  const std::uint64_t to_free = *size > rules_.max_bytes ? *size - rules_.max_bytes : 0;
  if (to_free == 0) {
    next_phase();
    return Status::ok();
  }
  // The regular events stored first, after those already removed for size, until their JSON
  // adds up to what is to be freed; the size is measured again at the next step.
  const std::size_t batch = rules_.batch_size;
  const std::size_t scan = batch * kScanPerRemoval;
  std::vector<EventId> ids;
  std::uint64_t freed = 0;
  std::size_t seen = 0;
  std::uint64_t last = size_seq_;
  Status s = storage_.scan_since(size_seq_, [&](const StoredEvent& e) {
    last = e.seq;
    if (e.event->kind_class() == KindClass::kRegular) {
      ids.push_back(e.event->id());
      freed += e.event->json().size();
    }
    return ++seen < scan && ids.size() < batch && freed < to_free;
  });
  if (!s) return s;
  if (s = remove(ids, RetentionRule::kMaxBytes, out); !s) return s;
  size_seq_ = last;
  if (ids.empty() && seen < scan) {
    log_.write(LogLevel::kWarn,
               "retention: the stored events' JSON is {} bytes, over max-bytes ({}), but only "
               "replaceable and addressable events are left, which are not removed for size",
               *size, rules_.max_bytes);
    next_phase();
  }
  return Status::ok();
}

Status Retention::remove(const std::vector<EventId>& ids, RetentionRule rule,
                         std::vector<RemovedEvent>& out) {
  if (ids.empty()) return Status::ok();
  Result<std::vector<RemovedEvent>> erased = storage_.erase(ids);
  if (!erased) return std::move(erased).error();
  for (RemovedEvent& gone : *erased) {
    gone.reason = RemovalReason::kRetention;
    gone.rule = rule;
    out.push_back(gone);
  }
  return Status::ok();
}

}  // namespace pipeline
}  // namespace relaycore
