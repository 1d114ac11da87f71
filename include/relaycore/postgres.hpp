// PostgreSQL storage (the relaycore::postgres library, built when libpq is found): the shared
// store of several relay nodes. It implements the public Storage interface with the same rules
// as the SQLite storage: NIP-01 replacement, NIP-09 deletion with tombstones, NIP-40 expiration,
// NIP-50 search (a GIN-indexed tsvector, ranked by ts_rank).
//
// Several nodes may write to one database at once. Replaceable and addressable writes stay
// atomic across them: each write transaction first takes a transaction-scoped advisory lock per
// replacement slot, event id and deleted id it touches (in a fixed order, so two nodes never
// deadlock), then decides "newest wins, then lowest id" on what is committed.
//
// Commit sequences come from one PostgreSQL sequence shared by every node, so they are unique
// and grow with every commit of one node. Commits of different nodes may finish out of sequence
// order; a node learns of the others' events through its PubSub.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "relaycore/export.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"

namespace relaycore {

struct PostgresOptions {
  // A libpq connection string, either "host=... dbname=... user=..." or a postgresql:// URI
  // (https://www.postgresql.org/docs/current/libpq-connect.html). Everything libpq accepts
  // works, including the PG* environment variables for what the string leaves out.
  // Default: "" (libpq's defaults: the local server, the database named after the user).
  std::string conninfo;
  // Connections for reads (query, count, contains, max_seq, scan_since), used concurrently.
  // Writes have one connection of their own on top, so a node opens pool_size + 1.
  // Default: 4.
  std::uint32_t pool_size = 4;
  // How long a connection attempt may take before it fails, in seconds (libpq connect_timeout;
  // a value in `conninfo` wins).
  // Default: 5.
  std::uint32_t connect_timeout_s = 5;
  // After a connection is lost or an attempt fails, calls on it fail at once with "error:"
  // until this long has passed; then the next call tries again. Each failed attempt doubles the
  // wait up to reconnect_max_ms; a success resets it.
  // Default: 100.
  std::uint32_t reconnect_min_ms = 100;
  // Default: 5000.
  std::uint32_t reconnect_max_ms = 5000;
  // The most a statement may run on the server before it is cancelled with an error
  // (statement_timeout); 0 means no limit.
  // Default: 30000.
  std::uint32_t statement_timeout_ms = 30000;
  // How long a sent request may go unacknowledged by the server's TCP stack before the
  // connection counts as lost (libpq tcp_user_timeout), so a vanished server gives an error
  // instead of a hang; 0 keeps the system default.
  // Default: 10000.
  std::uint32_t tcp_user_timeout_ms = 10000;
  // Where reads report a stored row they skipped because its JSON is not the event its id
  // names (altered outside relaycore), at kError.
  // Default: null, meaning silent.
  std::shared_ptr<Logger> logger;
};

// Connects, creates or migrates the schema (under the relaycore_schema version table, in one
// transaction guarded by an advisory lock, so nodes starting together do not race) and returns
// the storage. Fails with "error: ..." when the database cannot be reached or has a schema
// version this library does not know; an open error includes libpq's reason (it is meant for
// the operator, and can name the host and user).
//
// [Threading] As Storage: one writer thread at a time, any number of readers. Visitors run
//   while the call holds a pooled connection, so they must not call back into the storage.
// [Blocking] Every call blocks on the network. A server that goes away makes calls fail: at once
//   when it closes its connections or refuses new ones, after connect_timeout_s or
//   tcp_user_timeout_ms when it vanishes from the network, and at once while in reconnect
//   backoff. A server that hangs with its connections open blocks calls until it answers.
// [Ownership] The storage owns its connections and closes them when the last reference goes.
// [Errors] Failures are "error: storage: ..." statuses; a failed write_batch leaves the
//   database as it was (the transaction rolls back) and reports every event as not stored.
//   An "error:" answer never hides a commit the storage knows of, but when the connection
//   breaks during COMMIT the outcome is unknown to it: the batch is reported as failed and may
//   have been stored.
RELAYCORE_API Result<std::shared_ptr<Storage>> new_postgres_storage(PostgresOptions options);

}  // namespace relaycore
