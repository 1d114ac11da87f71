// The paged REQ fallback, for relays without NIP-77: time windows read from both sides and
// compared, with a checkpoint of the oldest window done so that a rerun resumes below it.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "../common/progress.hpp"
#include "sync.hpp"

namespace relaycore::sync {
namespace {

// Events dated this far ahead of the clock are still synced.
constexpr std::int64_t kFutureSeconds = 366 * 24 * 3600;
// The first window: a day, widened while windows come back sparse and halved while full.
constexpr std::int64_t kFirstWidth = 24 * 3600;

// The state file: one line per sync that stopped before its end, "<oldest done>\t<key>", where
// the key names the directions, the remote and the filter. Written whole and renamed into place,
// so a stop mid-write leaves the previous version.
class Checkpoints {
 public:
  explicit Checkpoints(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      const std::size_t tab = line.find('\t');
      if (tab == std::string::npos) continue;
      entries_[line.substr(tab + 1)] = std::strtoll(line.c_str(), nullptr, 10);
    }
  }

  std::optional<std::int64_t> get(const std::string& key) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }

  Status set(const std::string& key, std::optional<std::int64_t> done_since) {
    if (done_since) {
      entries_[key] = *done_since;
    } else {
      entries_.erase(key);
    }
    std::error_code ec;
    if (entries_.empty()) {
      std::filesystem::remove(path_, ec);
      return Status::ok();
    }
    const std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      for (const auto& [k, v] : entries_) out << v << '\t' << k << '\n';
      if (!out.flush()) return Status::error("cannot write " + tmp);
    }
    std::filesystem::rename(tmp, path_, ec);
    if (ec) return Status::error("cannot write " + path_ + ": " + ec.message());
    return Status::ok();
  }

 private:
  const std::string path_;
  std::map<std::string, std::int64_t> entries_;
};

std::set<EventId> ids_of(const std::vector<EventPtr>& events) {
  std::set<EventId> ids;
  for (const EventPtr& e : events) ids.insert(e->id());
  return ids;
}

// Stores in `to` the events of one window that `from` has and `other` lacks, once verified;
// `moved` is their number.
Status move_missing(const Peer& from, const std::vector<EventPtr>& theirs,
                    const std::vector<EventPtr>& other, Peer& to, Tally& tally,
                    std::size_t& moved) {
  const std::set<EventId> present = ids_of(other);
  std::vector<EventPtr> moving;
  for (const EventPtr& e : theirs) {
    if (!present.count(e->id())) moving.push_back(e);
  }
  moved = moving.size();
  tally.wanted += moved;
  moving = verified(from, std::move(moving), tally.bad);
  tally.received += moving.size();
  return to.store(moving, tally);
}

}  // namespace

std::uint64_t total_of(std::span<Peer* const> peers, const Filter& filter) {
  std::uint64_t total = 0;
  for (Peer* p : peers) {
    Result<std::uint64_t> n = p->count(filter);
    if (!n) return 0;
    total += *n;
  }
  return total;
}

std::int64_t walk_low(const Filter& filter) {
  return std::max<std::int64_t>(0, filter.since.value_or(0));
}

std::int64_t walk_high(const Filter& filter) {
  return filter.until ? *filter.until : unix_now() + kFutureSeconds;
}

Status walk_windows(std::span<Peer* const> peers, const Filter& filter, std::uint32_t page,
                    std::int64_t lo, std::int64_t hi, std::span<std::uint64_t> bad,
                    std::uint64_t& overflows, const WindowVisit& visit) {
  std::vector<std::vector<EventPtr>> got(peers.size());
  auto read = [&](std::size_t i, std::int64_t since, std::int64_t until, std::uint32_t limit) {
    got[i].clear();
    Filter f = filter;
    f.since = since;
    f.until = until;
    f.limit = limit;
    return peers[i]->query(f, got[i], bad[i]);
  };
  std::int64_t until = hi;
  std::int64_t width = std::min(kFirstWidth, hi - lo + 1);
  while (until >= lo) {
    if (stop_requested()) return interrupted();
    const std::int64_t since = until - lo + 1 <= width ? lo : until - width + 1;
    bool full = false;
    for (std::size_t i = 0; i < peers.size(); ++i) {
      const std::uint32_t limit = std::min(page, peers[i]->max_limit());
      if (Status s = read(i, since, until, limit); !s) return s;
      full = full || got[i].size() >= limit;
    }
    if (full && since < until) {
      width = std::max<std::int64_t>(1, (until - since + 1) / 2);
      continue;
    }
    // A full one-second window: read whole, as far as each peer allows.
    for (std::size_t i = 0; full && i < peers.size(); ++i) {
      const std::uint32_t most = peers[i]->max_limit();
      if (got[i].size() < std::min(page, most)) continue;
      if (most > page) {
        if (Status s = read(i, since, until, most); !s) return s;
      }
      if (got[i].size() >= most) {
        ++overflows;
        std::fprintf(stderr,
                     "%s holds at least %zu events at created_at %lld, as many as it serves for "
                     "one query: the rest of that second cannot be paged with NIP-01 filters "
                     "(sync it with NIP-77, or narrow --filter)\n",
                     peers[i]->name().c_str(), got[i].size(), static_cast<long long>(since));
      }
    }
    if (Status s = visit(since, until, got); !s) return s;
    until = since - 1;
    // Sparse windows widen, so long quiet spans take few queries.
    std::size_t most = 0;
    for (const auto& g : got) most = std::max(most, g.size());
    if (most < page / 4) width = std::min(width * (most == 0 ? 4 : 2), hi - lo + 1);
  }
  return Status::ok();
}

Status windowed_sync(Peer& local, Peer& remote, const Filter& filter, Directions directions,
                     std::uint32_t page, const std::string& state_path, Report& report) {
  const std::string key = std::string(directions.down && directions.up ? "both"
                                      : directions.down                ? "down"
                                                                       : "up") +
                          " " + remote.name() + " " + filter.to_json();
  std::optional<Checkpoints> checkpoints;
  const std::int64_t lo = walk_low(filter);
  std::int64_t hi = walk_high(filter);
  if (!state_path.empty()) {
    checkpoints.emplace(state_path);
    if (std::optional<std::int64_t> done = checkpoints->get(key)) {
      hi = std::min(hi, *done - 1);
      std::fprintf(stderr, "resuming below created_at %lld (checkpoint in %s)\n",
                   static_cast<long long>(*done), state_path.c_str());
    }
  }
  Peer* peers[2] = {&remote, &local};
  std::uint64_t bad[2] = {0, 0};
  Filter range = filter;
  range.since = lo;
  range.until = hi;
  examples::Progress progress("sync", "events", total_of(peers, range));
  Status walked = walk_windows(
      peers, filter, page, lo, hi, bad, report.overflows,
      [&](std::int64_t since, std::int64_t until, std::vector<std::vector<EventPtr>>& got) {
        const std::vector<EventPtr>& theirs = got[0];
        const std::vector<EventPtr>& ours = got[1];
        std::size_t down = 0, up = 0;
        if (directions.down) {
          if (Status s = move_missing(remote, theirs, ours, local, report.down, down); !s) return s;
        }
        if (directions.up) {
          if (Status s = move_missing(local, ours, theirs, remote, report.up, up); !s) return s;
        }
        progress.add(theirs.size() + ours.size());
        if (verbose()) {
          std::fprintf(stderr, "window %lld..%lld: remote %zu, local %zu, down %zu, up %zu\n",
                       static_cast<long long>(since), static_cast<long long>(until), theirs.size(),
                       ours.size(), down, up);
        }
        if (checkpoints) return checkpoints->set(key, since);
        return Status::ok();
      });
  progress.finish();
  report.down.bad += bad[0];
  report.up.bad += bad[1];
  if (!walked) return walked;
  // Done: the next run starts from the top again.
  if (checkpoints) return checkpoints->set(key, std::nullopt);
  return Status::ok();
}

}  // namespace relaycore::sync
