// Negentropy: range-based set reconciliation, protocol version 1, as NIP-77 carries it. Two
// peers that each hold a set of (created_at, id) records learn which ids only one of them has,
// exchanging fingerprints of ranges instead of the ids themselves. The relay answers NEG-OPEN
// and NEG-MSG with the responder side; a client (or another relay) drives the initiator side.
// Messages here are the binary form; NIP-77 sends them hex-encoded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

// The protocol version byte this implementation speaks (version 1).
inline constexpr std::uint8_t kNegentropyVersion = 0x61;

// One record: an event's created_at and id. Sets are sorted by created_at, then id.
struct NegentropyItem {
  std::uint64_t created_at = 0;
  EventId id{};

  friend auto operator<=>(const NegentropyItem&, const NegentropyItem&) = default;
};

// A sorted set of records, shared read-only by the sessions that reconcile against it.
using NegentropySet = std::shared_ptr<const std::vector<NegentropyItem>>;

// Sorts the records and drops repeated ones, so that they form a set.
RELAYCORE_API NegentropySet make_negentropy_set(std::vector<NegentropyItem> items);

struct NegentropyOptions {
  // The largest message this side sends, in bytes before hex encoding; a reply that would be
  // larger stops early and leaves the rest of the ranges for the next round. 0 means no limit.
  // At least 4096 otherwise. Default: 60000, as the nostr-tools client.
  std::size_t frame_size_limit = 60000;
  // A range of records that differs is split into this many sub-ranges, each sent with its
  // fingerprint. Fewer buckets send fewer bytes in all and take more rounds: between two sets
  // of 1M records that differ by 1,000, 4 buckets sent 1.4% of the bytes of the id list in 6
  // rounds and 16 buckets 4.3% in 3 (without a frame size limit). At least 2.
  // Default: 4.
  std::size_t buckets = 4;
  // A range of fewer records than this is sent as its list of ids instead of being split.
  // Default: 4 (at least `buckets`, so that a split never yields empty buckets).
  std::size_t id_list_below = 4;
};

// One side of a reconciliation over a fixed set. The initiator calls initiate(), then
// reconcile() with every reply until it returns an empty message; the responder answers each
// message with respond(). Not thread-safe; cheap to create (the set is shared).
class RELAYCORE_API Negentropy {
 public:
  explicit Negentropy(NegentropySet set, NegentropyOptions options = NegentropyOptions());

  // The first message of the initiator.
  std::string initiate();

  // Initiator: takes the responder's reply, appends the ids this side has and the responder
  // lacks to `have`, and those the responder has and this side lacks to `need`, each id once
  // over the whole sync (a message cut at the frame size limit ends with one range for all that
  // follows, which may take in ranges already settled). Returns the
  // next message, or an empty string when the sets have been fully compared. Fails with
  // "invalid: ..." on a malformed message.
  Result<std::string> reconcile(std::string_view message, std::vector<EventId>& have,
                                std::vector<EventId>& need);

  // Responder: the reply to one message of the initiator. A message of another protocol
  // version is answered, as the protocol asks, with the single byte of the version spoken here.
  // Fails with "invalid: ..." on a malformed message.
  Result<std::string> respond(std::string_view message);

  // The records of the set.
  std::size_t size() const noexcept { return set_->size(); }

 private:
  struct Run;
  Result<std::string> run(std::string_view message, std::vector<EventId>* have,
                          std::vector<EventId>* need);

  NegentropySet set_;
  NegentropyOptions options_;
  // The ids reported to `have` or `need` so far.
  std::set<EventId> reported_;
};

}  // namespace relaycore
