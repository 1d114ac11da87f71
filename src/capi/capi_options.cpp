// The C API's options: relaycore_options, of whichever released layout the caller has, checked
// and turned into Options.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>

#include "capi/capi.hpp"
#include "relaycore/version.hpp"

namespace relaycore::capi {
namespace {

constexpr std::size_t kMaxThreads = 256;
// SQLite takes the page cache's size as an int of KiB; 2^30 KiB is 1 TiB.
constexpr std::size_t kMaxCacheKib = std::size_t{1} << 30;

// The released layouts of relaycore_options, by size: the first ended at max_subscriptions,
// and the current one. A caller's struct_size is one of these, or larger (a newer header).
constexpr std::size_t kOptionsLayouts[] = {offsetof(relaycore_options, commit_delay_micros),
                                           sizeof(relaycore_options)};
// Far more than the struct will ever grow to: a larger struct_size is garbage, not a layout, and
// its bytes are not read.
constexpr std::size_t kOptionsMaxSize = 4096;

relaycore_status invalid(const std::string& message) {
  return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: " + message);
}

// A released layout, or a newer one whose fields past the ones this library knows are zero: a
// set one is an option it cannot honour.
relaycore_status check_struct_size(const relaycore_options* o) {
  const std::size_t size = o->struct_size;
  if (size < kOptionsLayouts[0]) {
    return invalid("options.struct_size is " + std::to_string(size) +
                   ", smaller than any relaycore_options (set it to sizeof(relaycore_options))");
  }
  const bool released = std::find(std::begin(kOptionsLayouts), std::end(kOptionsLayouts), size) !=
                        std::end(kOptionsLayouts);
  if ((!released && size < sizeof(relaycore_options)) || size > kOptionsMaxSize) {
    return invalid("options.struct_size is " + std::to_string(size) +
                   ", not the size of a relaycore_options");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(o);
  for (std::size_t i = sizeof(relaycore_options); i < size; ++i) {
    if (bytes[i] != 0) {
      return invalid("options set a field this library does not know (byte " + std::to_string(i) +
                     " of " + std::to_string(size) + "); relaycore " + kVersionString + " knows " +
                     std::to_string(sizeof(relaycore_options)));
    }
  }
  return RELAYCORE_OK;
}

// A field where 0 means the default: any other value must lie from `least` to `most`, and is
// stored in `out`.
template <typename T>
relaycore_status set_in_range(std::size_t value, const char* name, std::size_t least,
                              std::size_t most, T& out) {
  if (value == 0) return RELAYCORE_OK;
  if (value < least || value > most) {
    const std::string range = most == SIZE_MAX ? "at least " + std::to_string(least)
                              : least <= 1     ? "at most " + std::to_string(most)
                                           : std::to_string(least) + " to " + std::to_string(most);
    return invalid(std::string("options.") + name + " is " + std::to_string(value) + " (" + range +
                   ")");
  }
  out = static_cast<T>(value);
  return RELAYCORE_OK;
}

relaycore_status set_synchronous(relaycore_synchronous value, SqliteSync& out) {
  switch (value) {
    case RELAYCORE_SYNCHRONOUS_DEFAULT:
      return RELAYCORE_OK;
    case RELAYCORE_SYNCHRONOUS_FULL:
      out = SqliteSync::kFull;
      return RELAYCORE_OK;
    case RELAYCORE_SYNCHRONOUS_NORMAL:
      out = SqliteSync::kNormal;
      return RELAYCORE_OK;
    default:
      return invalid("options.sqlite_synchronous is " + std::to_string(static_cast<int>(value)) +
                     " (RELAYCORE_SYNCHRONOUS_FULL or RELAYCORE_SYNCHRONOUS_NORMAL)");
  }
}

relaycore_status set_event_cache(std::size_t value, std::uint32_t& out) {
  if (value == RELAYCORE_EVENT_CACHE_OFF) {
    out = 0;
    return RELAYCORE_OK;
  }
  return set_in_range(value, "event_cache_entries", 1, kMaxEventCacheEntries, out);
}

// The SQLite fields, which an in-memory store cannot honour.
relaycore_status set_sqlite(const relaycore_options& in, SqliteOptions& out) {
  if (std::strcmp(in.database_path, ":memory:") == 0) {
    const char* set = in.sqlite_synchronous != 0    ? "sqlite_synchronous"
                      : in.sqlite_cache_kib != 0    ? "sqlite_cache_kib"
                      : in.event_cache_entries != 0 ? "event_cache_entries"
                                                    : nullptr;
    if (set == nullptr) return RELAYCORE_OK;
    return invalid(std::string("options.") + set +
                   " is for a SQLite database, and database_path is \":memory:\"");
  }
  out.path = in.database_path;
  if (relaycore_status s = set_synchronous(in.sqlite_synchronous, out.synchronous);
      s != RELAYCORE_OK) {
    return s;
  }
  if (relaycore_status s =
          set_in_range(in.sqlite_cache_kib, "sqlite_cache_kib", 1, kMaxCacheKib, out.cache_kib);
      s != RELAYCORE_OK) {
    return s;
  }
  return set_event_cache(in.event_cache_entries, out.event_cache_entries);
}

relaycore_status set_fields(const relaycore_options& in, Options& out) {
  if (in.database_path == nullptr || in.database_path[0] == '\0') {
    return invalid("options.database_path is required (\":memory:\" keeps events in memory)");
  }
  if (relaycore_status s = set_sqlite(in, out.sqlite); s != RELAYCORE_OK) return s;
  if (in.audit_log_path != nullptr && in.audit_log_path[0] == '\0') {
    return invalid("options.audit_log_path is empty (NULL for no audit log)");
  }
  // Below one event's largest frame, every large event would close its subscriber.
  if (relaycore_status s = set_in_range(in.max_outbound_bytes, "max_outbound_bytes",
                                        Limits().max_event_bytes, SIZE_MAX, out.max_outbound_bytes);
      s != RELAYCORE_OK) {
    return s;
  }
  if (relaycore_status s =
          set_in_range(in.reader_threads, "reader_threads", 1, kMaxThreads, out.reader_threads);
      s != RELAYCORE_OK) {
    return s;
  }
  if (relaycore_status s =
          set_in_range(in.verify_threads, "verify_threads", 1, kMaxThreads, out.verify_threads);
      s != RELAYCORE_OK) {
    return s;
  }
  if (relaycore_status s =
          set_in_range(in.max_limit, "max_limit", 1, UINT32_MAX, out.limits.max_limit);
      s != RELAYCORE_OK) {
    return s;
  }
  if (relaycore_status s = set_in_range(in.max_subscriptions, "max_subscriptions", 1, SIZE_MAX,
                                        out.limits.max_subscriptions);
      s != RELAYCORE_OK) {
    return s;
  }
  if (relaycore_status s = set_in_range(in.commit_delay_micros, "commit_delay_micros", 1,
                                        kMaxCommitDelayMicros, out.commit_delay_micros);
      s != RELAYCORE_OK) {
    return s;
  }
  // A batch larger than the write queue could never fill.
  return set_in_range(in.max_write_batch, "max_write_batch", 1, Options().write_queue_capacity,
                      out.max_write_batch);
}

}  // namespace

relaycore_status to_options(const relaycore_options* in, Options& out) {
  if (relaycore_status s = check_struct_size(in); s != RELAYCORE_OK) return s;
  // An older caller's struct ends early: its bytes only, and zero (the default) for the rest.
  relaycore_options known;
  std::memset(&known, 0, sizeof known);
  std::memcpy(&known, in, std::min(in->struct_size, sizeof known));
  if (relaycore_status s = set_fields(known, out); s != RELAYCORE_OK) return s;
  if (std::strcmp(known.database_path, ":memory:") == 0) out.storage = new_memory_storage();
  // Opened once every field is known to be good, so that bad options leave no file behind.
  if (known.audit_log_path != nullptr) {
    SqliteAuditOptions audit;
    audit.path = known.audit_log_path;
    Result<std::shared_ptr<AuditSink>> sink = new_sqlite_audit_log(audit);
    if (!sink) return fail(sink.error());
    out.audit = std::move(sink).value();
  }
  return RELAYCORE_OK;
}

}  // namespace relaycore::capi
