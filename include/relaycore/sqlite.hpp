// SQLite storage, the embedded default: its options and its factory. Options::sqlite is used
// when a host sets no storage of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "relaycore/export.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"

namespace relaycore {

// How durable a SQLite commit is before OK is sent.
enum class SqliteSync : std::uint8_t {
  // Survives power loss: every group commit is fsynced. The default.
  kFull,
  // Survives a process crash but not power loss: the most recent commits can be lost.
  kNormal,
};

// The largest SqliteOptions::event_cache_entries that hosts taking it from their users accept
// (the example relay's event-cache, the C API): at a few hundred bytes and twice the JSON per
// entry, already tens of GiB.
inline constexpr std::uint32_t kMaxEventCacheEntries = 100000000;

struct SqliteOptions {
  // The database file, created if missing.
  // Default: "relaycore.db".
  std::string path = "relaycore.db";
  // Default: kFull.
  SqliteSync synchronous = SqliteSync::kFull;
  // Page cache per connection, in KiB.
  // Default: 65536 (64 MiB).
  std::uint32_t cache_kib = 65536;
  // Reader connections for concurrent queries.
  // Default: 4.
  std::uint32_t readers = 4;
  // Gather each commit's WAL writes into large writes (a WAL frame is otherwise two system
  // calls). Takes effect only with kFull, where every commit syncs the WAL; false is there to
  // measure the difference.
  // Default: true.
  bool buffer_wal_writes = true;
  // The WAL's length, in pages, at which it is copied back into the database file. A thread of
  // its own does the copying, beside the writer, so commits do not stop for it; the writer
  // copies the last few hundred pages itself so that the WAL can start over. A large WAL costs
  // disk space only: a group commit of random ids and tag values dirties pages all over the
  // indexes, and a small one had nearly every commit copy the same pages again.
  // Default: 16384 (64 MiB of 4 KiB pages).
  std::uint32_t checkpoint_frames = 16384;
  // Keep the NIP-50 search index up to date as events are stored and removed. false is there
  // only to measure what the index costs the writer: searches then miss every event stored
  // while it was false.
  // Default: true.
  bool search_index = true;
  // Events recently stored or read, kept parsed in memory by id: a REQ for ids is answered from
  // it without SQLite, and a row read that is cached is not parsed again.
  // Each holds an event's fields and its JSON: roughly twice the JSON plus a few hundred
  // bytes. 0 disables it.
  // Default: 100000.
  std::uint32_t event_cache_entries = 100000;
  // Where opening reports a schema migration's progress (building an index over a large file
  // takes minutes), at kInfo, and reads report a stored row they skipped because its JSON is
  // not the event its id names (altered outside relaycore), at kError. Relay::open passes the
  // relay's logger when this is null.
  // Default: null, meaning silent.
  std::shared_ptr<Logger> logger;
};

// The embedded default: SQLite in WAL mode, one writer connection, a pool of readers.
RELAYCORE_API Result<std::shared_ptr<Storage>> new_sqlite_storage(const SqliteOptions& options);

}  // namespace relaycore
