#include "audit/audit_chain.hpp"

#include <array>

namespace relaycore {

const char* audit_action_name(AuditAction action) noexcept {
  switch (action) {
    case AuditAction::kEventCreated:
      return "event_created";
    case AuditAction::kEventDeleted:
      return "event_deleted";
    case AuditAction::kEventReplaced:
      return "event_replaced";
    case AuditAction::kRecovered:
      return "recovered";
    case AuditAction::kEventExpired:
      return "event_expired";
    case AuditAction::kEventErased:
      return "event_erased";
    case AuditAction::kRetentionMaxAge:
      return "retention_max_age";
    case AuditAction::kRetentionMaxPerAuthor:
      return "retention_max_per_author";
    case AuditAction::kRetentionMaxBytes:
      return "retention_max_bytes";
  }
  return "unknown";
}

namespace audit {
namespace {

// Writes `value` as `N` big-endian bytes.
template <std::size_t N, typename T>
std::array<std::uint8_t, N> big_endian(T value) {
  std::array<std::uint8_t, N> out{};
  auto bits = static_cast<std::uint64_t>(value);
  for (std::size_t i = 0; i < N; ++i) {
    out[N - 1 - i] = static_cast<std::uint8_t>(bits & 0xFF);
    bits >>= 8;
  }
  return out;
}

// One field of the encoding: its length as a u32 big-endian, then its bytes.
void put_field(crypto::Sha256& sha, const void* data, std::size_t size) {
  auto length = big_endian<4>(static_cast<std::uint32_t>(size));
  sha.update(length.data(), length.size());
  sha.update(data, size);
}

template <std::size_t N>
void put_field(crypto::Sha256& sha, const std::array<std::uint8_t, N>& bytes) {
  put_field(sha, bytes.data(), bytes.size());
}

}  // namespace

std::optional<AuditAction> action_from_code(std::int64_t code) noexcept {
  switch (code) {
    case static_cast<std::int64_t>(AuditAction::kEventCreated):
    case static_cast<std::int64_t>(AuditAction::kEventDeleted):
    case static_cast<std::int64_t>(AuditAction::kEventReplaced):
    case static_cast<std::int64_t>(AuditAction::kRecovered):
    case static_cast<std::int64_t>(AuditAction::kEventExpired):
    case static_cast<std::int64_t>(AuditAction::kEventErased):
    case static_cast<std::int64_t>(AuditAction::kRetentionMaxAge):
    case static_cast<std::int64_t>(AuditAction::kRetentionMaxPerAuthor):
    case static_cast<std::int64_t>(AuditAction::kRetentionMaxBytes):
      return static_cast<AuditAction>(code);
    default:
      return std::nullopt;
  }
}

crypto::Digest record_hash(crypto::Sha256& sha, std::uint64_t seq, const AuditRecord& record,
                           const crypto::Digest& prev_hash) {
  sha.reset();
  sha.update(kDomainTag);
  put_field(sha, big_endian<8>(seq));
  put_field(sha, big_endian<8>(record.timestamp));
  std::string_view action = audit_action_name(record.action);
  put_field(sha, action.data(), action.size());
  put_field(sha, record.event_id);
  put_field(sha, big_endian<2>(record.kind));
  put_field(sha, record.actor);
  put_field(sha, big_endian<8>(record.event_seq));
  put_field(sha, prev_hash);
  return sha.finish();
}

}  // namespace audit
}  // namespace relaycore
