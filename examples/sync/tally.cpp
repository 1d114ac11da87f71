// The stop flag, the clock, --verbose, checking events, and counting the answers to them.
#include <atomic>
#include <chrono>
#include <cstdio>

#include "sync.hpp"

namespace relaycore::sync {
namespace {

std::atomic<bool> g_stop{false};
bool g_verbose = false;

// Rejections printed one by one; past that only their counts by reason, in the summary.
constexpr std::uint64_t kRejectionsShown = 20;
// Bad events printed one by one; the rest are only counted.
constexpr std::uint64_t kBadShown = 20;

}  // namespace

bool stop_requested() { return g_stop.load(std::memory_order_relaxed); }
void request_stop() { g_stop.store(true, std::memory_order_relaxed); }
Status interrupted() { return Status::error("interrupted"); }

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void set_verbose(bool on) { g_verbose = on; }
bool verbose() { return g_verbose; }

void report_bad(const std::string& peer, std::string_view id, std::uint64_t& bad,
                const std::string& why) {
  if (++bad <= kBadShown) {
    std::fprintf(stderr, "bad event from %s%s%.*s: %s (not stored)\n", peer.c_str(),
                 id.empty() ? "" : " ", static_cast<int>(id.size()), id.data(), why.c_str());
  }
}

std::vector<EventPtr> verified(const Peer& from, std::vector<EventPtr> events, std::uint64_t& bad) {
  if (from.trusted()) return events;
  std::vector<EventPtr> good;
  good.reserve(events.size());
  for (EventPtr& e : events) {
    if (Status s = e->verify(); !s) {
      report_bad(from.name(), e->id_hex(), bad, s.message());
    } else {
      good.push_back(std::move(e));
    }
  }
  return good;
}

void Tally::count_answer(std::string_view id_hex, bool accepted, const std::string& message) {
  // An older version of a replaceable event than the one stored is refused as a duplicate.
  if (message.rfind("duplicate:", 0) == 0) {
    ++duplicates;
  } else if (accepted) {
    ++stored;
  } else {
    if (++rejected <= kRejectionsShown) {
      std::fprintf(stderr, "rejected %.*s: %s\n", static_cast<int>(id_hex.size()), id_hex.data(),
                   message.c_str());
    }
    ++reasons[message];
  }
}

}  // namespace relaycore::sync
