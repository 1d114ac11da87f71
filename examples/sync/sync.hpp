// relaycore-sync's parts: the two sides of a sync (a local database or a relay, each a Peer),
// the NIP-77 negentropy sync and the paged REQ fallback, and what each direction did.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/negentropy.hpp"
#include "relaycore/status.hpp"

namespace relaycore::sync {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

// Set by SIGINT and SIGTERM. Every loop looks at it between steps, so a stop leaves whatever was
// verified and handed to storage stored.
bool stop_requested();
void request_stop();
// The Status a step returns when it stopped for a signal.
Status interrupted();

// The clock, in NIP-01 seconds.
std::int64_t unix_now();

// Lines of detail (one per batch or window) on stderr, with --verbose.
void set_verbose(bool on);
bool verbose();

// What happened to the events moved one way (down: remote to local; up: local to remote).
struct Tally {
  std::uint64_t wanted = 0;      // the receiving side lacked them
  std::uint64_t received = 0;    // read from the sending side and verified
  std::uint64_t bad = 0;         // failed verification: reported, never stored
  std::uint64_t stored = 0;      // accepted by the receiving side
  std::uint64_t duplicates = 0;  // it had them (or a newer version) after all
  std::uint64_t rejected = 0;    // refused, by reason below
  std::map<std::string, std::uint64_t> reasons;

  // Counts one answer to an EVENT (OK, or a local submit's result) for `id_hex`.
  void count_answer(std::string_view id_hex, bool accepted, const std::string& message);
};

// One side of a sync.
class Peer {
 public:
  virtual ~Peer() = default;
  // The database path or relay URL, for messages.
  virtual const std::string& name() const = 0;
  // The most events one query returns (a relay's NIP-11 max_limit).
  virtual std::uint32_t max_limit() const = 0;
  // Whether its events were verified already (a relaycore database), or must be checked with
  // verified() before they are stored or sent on.
  virtual bool trusted() const = 0;
  // Appends the events matching `filter` (which carries a limit) to `out`. One that cannot be
  // read, or does not match the filter, is reported on stderr and counted in `bad`, never
  // returned.
  virtual Status query(const Filter& filter, std::vector<EventPtr>& out, std::uint64_t& bad) = 0;
  // The (created_at, id) of every event matching `filter`.
  virtual Status scan_keys(const Filter& filter, std::vector<NegentropyItem>& out) = 0;
  // How many events match `filter` (NIP-45 for a relay), for a progress total; fails when the
  // peer cannot say.
  virtual Result<std::uint64_t> count(const Filter& filter) = 0;
  // Stores verified events and counts each answer in `tally`.
  virtual Status store(const std::vector<EventPtr>& events, Tally& tally) = 0;
  // Ends cleanly: the embedded relay drains, a connection is closed with a handshake.
  virtual Status close() = 0;
};

// Prints "bad event from <peer> <id>: <why> (not stored)" for the first few, and counts it.
void report_bad(const std::string& peer, std::string_view id, std::uint64_t& bad,
                const std::string& why);

// `events` from `from` without those that fail Event::verify() (id and signature), which are
// reported and counted in `bad`. Checked only when they are about to be stored or sent on, so
// a sync that moves nothing verifies nothing.
std::vector<EventPtr> verified(const Peer& from, std::vector<EventPtr> events, std::uint64_t& bad);

// A relay over WebSocket (relay_peer.cpp).
class RelayPeer : public Peer {
 public:
  // Reads the relay's NIP-11 document, then connects. `batch` is how many EVENTs wait for
  // their OK at once.
  static Result<std::unique_ptr<RelayPeer>> open(const std::string& url, std::size_t batch);
  // Whether the NIP-11 document lists NIP-77.
  virtual bool supports_negentropy() const = 0;
  // Runs a NIP-77 reconciliation of `filter` with `local` as the initiator: the ids only this
  // side has go to `have`, those only the relay has to `need`. A NEG-ERR fails with its reason.
  virtual Status reconcile(const Filter& filter, Negentropy& local, std::vector<EventId>& have,
                           std::vector<EventId>& need) = 0;
};

// A relaycore SQLite database, written through an embedded Relay (db_peer.cpp). Refused while a
// relay holds the database.
Result<std::unique_ptr<Peer>> open_db_peer(const std::string& path);

// Direction of a sync.
struct Directions {
  bool down = false;
  bool up = false;
};

struct Report {
  Tally down;
  Tally up;
  // One-second windows holding more events than a peer returns for one query.
  std::uint64_t overflows = 0;
};

// Calls `visit` for time windows covering [lo, hi], newest first, each holding fewer events on
// every peer than a page (min(page, its max_limit)): a full window is halved. A full one-second
// window is read again with each peer's max_limit; if still full it is counted in `overflows`
// and reported, since NIP-01 filters cannot page within one second. `events[i]` are peer i's,
// and `bad[i]` counts the bad events peer i sent.
using WindowVisit = std::function<Status(std::int64_t since, std::int64_t until,
                                         std::vector<std::vector<EventPtr>>& events)>;
Status walk_windows(std::span<Peer* const> peers, const Filter& filter, std::uint32_t page,
                    std::int64_t lo, std::int64_t hi, std::span<std::uint64_t> bad,
                    std::uint64_t& overflows, const WindowVisit& visit);

// The events of `filter` on all `peers`, for a progress total; 0 when one cannot say.
std::uint64_t total_of(std::span<Peer* const> peers, const Filter& filter);

// The bounds of a walk over `filter`: its since and until, or all of time up to a year ahead.
std::int64_t walk_low(const Filter& filter);
std::int64_t walk_high(const Filter& filter);

// The paged REQ sync (windows.cpp). With a `state_path`, the oldest window done is kept there
// and a rerun with the same sides, directions and filter resumes below it.
Status windowed_sync(Peer& local, Peer& remote, const Filter& filter, Directions directions,
                     std::uint32_t page, const std::string& state_path, Report& report);

// The NIP-77 sync (negentropy_sync.cpp): the difference from one reconciliation, then the
// events moved by id, `batch` at a time.
Status negentropy_sync(Peer& local, RelayPeer& remote, const Filter& filter, Directions directions,
                       std::size_t batch, Report& report);

}  // namespace relaycore::sync
