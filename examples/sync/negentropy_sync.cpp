// The NIP-77 sync: the local side's (created_at, id) set reconciled against the relay's, then
// each missing event moved by id, a batch at a time, verified on the way.
#include <algorithm>
#include <cstdio>

#include "../common/progress.hpp"
#include "sync.hpp"

namespace relaycore::sync {
namespace {

// Moves the events `ids` names from `from` to `to`, `batch` ids per query.
Status transfer(const char* what, Peer& from, Peer& to, std::vector<EventId> ids, std::size_t batch,
                Tally& tally) {
  tally.wanted += ids.size();
  std::sort(ids.begin(), ids.end());
  batch = std::max<std::size_t>(1, std::min<std::size_t>(batch, from.max_limit()));
  examples::Progress progress(what, "events", ids.size());
  for (std::size_t at = 0; at < ids.size(); at += batch) {
    if (stop_requested()) return interrupted();
    const std::size_t n = std::min(batch, ids.size() - at);
    Filter f;
    f.ids.emplace(ids.begin() + static_cast<std::ptrdiff_t>(at),
                  ids.begin() + static_cast<std::ptrdiff_t>(at + n));
    f.limit = static_cast<std::uint32_t>(n);
    std::vector<EventPtr> events;
    if (Status s = from.query(f, events, tally.bad); !s) return s;
    events = verified(from, std::move(events), tally.bad);
    tally.received += events.size();
    if (Status s = to.store(events, tally); !s) return s;
    progress.add(n);
    if (verbose()) {
      std::fprintf(stderr, "%s: %zu of %zu done, %llu stored\n", what, at + n, ids.size(),
                   static_cast<unsigned long long>(tally.stored));
    }
  }
  return Status::ok();
}

}  // namespace

Status negentropy_sync(Peer& local, RelayPeer& remote, const Filter& filter, Directions directions,
                       std::size_t batch, Report& report) {
  std::vector<NegentropyItem> items;
  if (Status s = local.scan_keys(filter, items); !s) return s;
  if (stop_requested()) return interrupted();
  Negentropy negentropy(make_negentropy_set(std::move(items)));
  std::vector<EventId> have, need;
  if (Status s = remote.reconcile(filter, negentropy, have, need); !s) return s;
  std::printf("negentropy: local %zu events, only local %zu, only remote %zu\n", negentropy.size(),
              have.size(), need.size());
  std::fflush(stdout);
  if (directions.down) {
    if (Status s = transfer("down", remote, local, std::move(need), batch, report.down); !s) {
      return s;
    }
  }
  if (directions.up) {
    if (Status s = transfer("up", local, remote, std::move(have), batch, report.up); !s) {
      return s;
    }
  }
  return Status::ok();
}

}  // namespace relaycore::sync
