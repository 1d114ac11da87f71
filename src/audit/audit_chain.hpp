// The hash chain of the audit log: how one record is encoded and hashed, shared by the SQLite
// sink that writes the chain and the verifier that walks it. docs/audit.md describes the format.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "crypto/sha256.hpp"
#include "relaycore/audit.hpp"

namespace relaycore::audit {

// The version of the on-disk format: the schema and the record encoding below. Stored in the
// meta table; a reader refuses a version it does not know instead of guessing.
inline constexpr std::int64_t kFormatVersion = 1;

// The domain tag that starts every hashed encoding, NUL included, so that a record hash can
// never be mistaken for the hash of anything else, and a future v2 encoding never collides.
inline constexpr std::string_view kDomainTag{"relaycore/audit/v1\0", 19};

// The prev_hash of record 1, and the head hash of an empty log.
inline constexpr crypto::Digest kZeroHash{};

// Maps a stored action code back to the enum; nullopt for a code no version ever wrote.
std::optional<AuditAction> action_from_code(std::int64_t code) noexcept;

// The hash of record `seq`: SHA-256 over kDomainTag, then each field as a 4-byte big-endian
// length followed by its bytes, in this order:
//   seq        u64 big-endian (8)
//   timestamp  i64 big-endian, two's complement (8)
//   action     audit_action_name(), ASCII ("event_created", ...)
//   event_id   32 bytes
//   kind       u16 big-endian (2)
//   actor      32 bytes
//   event_seq  u64 big-endian (8)
//   prev_hash  32 bytes: the hash of record seq-1, all zero for record 1
// Every field is length-prefixed, even the fixed-size ones, so the encoding stays unambiguous
// if a later version adds a variable-length field.
crypto::Digest record_hash(crypto::Sha256& sha, std::uint64_t seq, const AuditRecord& record,
                           const crypto::Digest& prev_hash);

}  // namespace relaycore::audit
