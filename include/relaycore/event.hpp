// Event: one Nostr event, immutable once built, and shared as EventPtr by every stage that
// touches it. Its canonical JSON is serialised once, at construction, and reused for storage and
// for every frame sent, so nothing on the hot path copies or re-serialises an event.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relaycore/export.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

using Bytes32 = std::array<std::uint8_t, 32>;
using EventId = Bytes32;
using Pubkey = Bytes32;
using Signature = std::array<std::uint8_t, 64>;
using Tag = std::vector<std::string>;

class Event;
using EventPtr = std::shared_ptr<const Event>;

// How NIP-01 treats a kind when storing it.
enum class KindClass : std::uint8_t {
  kRegular,      // stored as is
  kReplaceable,  // 0, 3, 10000-19999: one per (pubkey, kind)
  kEphemeral,    // 20000-29999: delivered live, never stored
  kAddressable,  // 30000-39999: one per (pubkey, kind, d tag)
};
RELAYCORE_API KindClass kind_class(std::uint16_t kind) noexcept;

// The fields of an event before relaycore has built its canonical form. Hosts and tests fill
// one in; parse_event fills one in from JSON. Moved, never copied, into the Event.
struct EventFields {
  EventId id{};
  Pubkey pubkey{};
  Signature sig{};
  std::int64_t created_at = 0;
  std::uint16_t kind = 0;
  std::vector<Tag> tags;
  std::string content;
};

class RELAYCORE_API Event {
 public:
  // Checks the limits and the tag shape, then builds the canonical JSON. Does not check the id
  // or the signature; verify() does.
  static Result<EventPtr> create(EventFields&& fields, const Limits& limits = Limits());

  // Loads an event a storage wrote itself from the JSON it stored (json() at the time), taking
  // the text instead of copying it. It is parsed as parse_event parses, without the size limits
  // (checked when the event was accepted) and without the checks parsing already made, and kept
  // as the event's JSON when it is in the canonical form, as everything relaycore stores is;
  // other text gets the canonical form built. Neither the id nor the signature is checked again:
  // the storage checks that the id is the one its row is kept under.
  static Result<EventPtr> load_stored(std::string&& json);

  const EventId& id() const noexcept { return fields_.id; }
  const Pubkey& pubkey() const noexcept { return fields_.pubkey; }
  const Signature& sig() const noexcept { return fields_.sig; }
  std::int64_t created_at() const noexcept { return fields_.created_at; }
  std::uint16_t kind() const noexcept { return fields_.kind; }
  const std::vector<Tag>& tags() const noexcept { return fields_.tags; }
  const std::string& content() const noexcept { return fields_.content; }

  // The canonical JSON object: keys in the order id, pubkey, created_at, kind, tags, content,
  // sig, no whitespace, NIP-01 escapes. This is what is stored and sent.
  std::string_view json() const noexcept { return json_; }

  // Hex views into json(); valid while the Event lives.
  std::string_view id_hex() const noexcept;
  std::string_view pubkey_hex() const noexcept;
  std::string_view sig_hex() const noexcept;

  // The NIP-01 commitment [0,pubkey,created_at,kind,tags,content], whose SHA-256 is the id.
  std::string commitment() const;

  // SHA-256 of commitment(), computed without building it as one string.
  EventId compute_id() const;

  // "invalid: ..." unless the id is the hash of the content.
  Status check_id() const;

  // "invalid: ..." unless sig is a valid BIP-340 signature of id by pubkey.
  Status verify_signature() const;

  // check_id() then verify_signature(): what the pipeline runs before anything is stored.
  Status verify() const;

  // The value (index 1) of the first tag named `name`, if any.
  std::optional<std::string_view> first_tag_value(std::string_view name) const noexcept;

  // The `d` tag value that keys addressable events; empty when there is none.
  std::string_view d_tag() const noexcept;

  // NIP-40 expiration timestamp, if the event carries a well-formed one.
  std::optional<std::int64_t> expiration() const noexcept { return expiration_; }

  KindClass kind_class() const noexcept { return relaycore::kind_class(fields_.kind); }

  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // The passkey that keeps construction to create(), which checks the fields first: only Event
  // can make one, yet the constructor stays public so that make_shared can call it.
  class Passkey {
   private:
    Passkey() = default;
    friend class Event;
  };
  Event(Passkey, EventFields&& fields);
  // Keeps `stored` as json() when it is the canonical form of `fields`.
  Event(Passkey, EventFields&& fields, std::string&& stored);

 private:
  // Builds json_ and its offsets from fields_.
  void build_json();
  // Takes `stored` as json_ when it is the canonical form of fields_: its head and tail are
  // compared byte for byte, its tags and content by length (the canonical escapes are the
  // shortest, so other text of these lengths can only differ in the case of a \u escape's hex
  // digits). False, leaving `stored`, otherwise.
  bool adopt_json(std::string& stored);
  // "[0,\"<pubkey>\",<created_at>,<kind>," : the part of the commitment not in json_.
  void append_commitment_head(std::string& out) const;
  // The serialised tags array and content string, as they stand inside json_.
  std::string_view tags_json() const noexcept;
  std::string_view content_json() const noexcept;

  EventFields fields_;
  std::string json_;
  // Offsets of the serialised tags array and content string inside json_, reused to hash the
  // commitment without re-serialising.
  std::uint32_t tags_begin_ = 0;
  std::uint32_t tags_end_ = 0;
  std::uint32_t content_end_ = 0;
  std::optional<std::int64_t> expiration_;
};

// Strictly parses one event object. Every failure is "invalid: <what is wrong>". Does not check
// the id or the signature.
RELAYCORE_API Result<EventPtr> parse_event(std::string_view json, const Limits& limits = Limits());

// BIP-340 Schnorr verification of a message of any length, with relaycore's shared context.
RELAYCORE_API bool verify_schnorr(const Pubkey& pubkey, const Signature& sig,
                                  const std::uint8_t* message, std::size_t size) noexcept;

}  // namespace relaycore
