// Options: everything a host configures when it opens a Relay. A plain struct with working
// defaults: Relay::open(Options()) is an embedded relay on ./relaycore.db.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "relaycore/audit.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/policy.hpp"
#include "relaycore/pubsub.hpp"
#include "relaycore/rate_limit.hpp"
#include "relaycore/retention.hpp"
#include "relaycore/sqlite.hpp"
#include "relaycore/storage.hpp"
#include "relaycore/version.hpp"

namespace relaycore {

// When live subscribers get an event relative to its OK.
enum class DispatchMode : std::uint8_t {
  // After the OK is queued, on the dispatch thread: acks wait for fan-out only once it is
  // dispatch_queue_capacity events behind.
  kDeferred,
  // Before the OK, on the writer thread: first delivery is sooner, acks are slower.
  kInline,
};

// What goes into the NIP-11 document besides the limits and supported NIPs.
struct RelayInfo {
  std::string name = "relaycore";
  std::string description = "A Nostr relay built on relaycore";
  std::string pubkey;   // operator's hex pubkey, optional
  std::string contact;  // optional
  // URLs of an image for the relay, a wide banner image, and a page on what may be posted;
  // optional.
  std::string icon;
  std::string banner;
  std::string posting_policy;
  // NIP-11 asks for the URL of the software's project here.
  std::string software = kProjectUrl;
  std::string version = kVersionString;
};

// NIP-77 negentropy syncing (NEG-OPEN, NEG-MSG, NEG-CLOSE).
struct NegentropyLimits {
  // Open sync sessions per connection; a NEG-OPEN past it gets NEG-ERR "rate-limited: ...".
  // 0 turns NIP-77 off: every NEG-OPEN gets NEG-ERR "blocked: ..." and NIP-11 does not list 77.
  // Default: 4.
  std::size_t max_sessions = 4;
  // Most events one sync may cover. A filter that matches more gets NEG-ERR "blocked: ...".
  // Each session holds 40 bytes per event it covers. Default: 1000000.
  std::uint32_t max_records = 1000000;
  // The largest negentropy message the relay sends, in bytes before hex encoding (the NEG-MSG
  // frame is about twice as large); a longer answer is cut and finished in later rounds.
  // At least 4096. Default: 60000.
  std::size_t frame_size_limit = 60000;
  // A session that has waited this long for the client's next NEG-MSG is closed with NEG-ERR
  // "closed: ..." and its records are freed, in milliseconds. Default: 60000.
  std::uint32_t idle_timeout_ms = 60000;
};

// The longest Options::commit_delay_micros that hosts taking it from their users accept (the
// example relay's --commit-delay-us, the C API): a held commit's OKs come up to the delay late.
inline constexpr std::uint32_t kMaxCommitDelayMicros = 100000;

struct Options {
  // Parser and subscription limits.
  Limits limits;

  // Where events live. Default: SQLite at `sqlite.path`.
  std::shared_ptr<Storage> storage;
  // Used when `storage` is null.
  SqliteOptions sqlite;

  // Where audit records go. Default: none (no audit log); set one, or use
  // new_sqlite_audit_log(), to get the hash chain.
  std::shared_ptr<AuditSink> audit;

  // Carries committed events between nodes. Default: an in-process PubSub.
  std::shared_ptr<PubSub> pubsub;
  // This node's origin id for echo suppression. Default: random.
  std::string node_id;

  // Token buckets per address and per pubkey for EVENT, REQ and COUNT, and the cap on
  // connections per address. Default: see RateLimits. VerbLimits{} for per_ip and 0 for
  // max_connections_per_ip turn them off.
  RateLimits rate_limits;

  // Host policies; null accepts everything.
  std::shared_ptr<EventPolicy> event_policy;
  std::shared_ptr<FilterPolicy> filter_policy;

  // Threads that parse, hash and verify. Default: 0, meaning the hardware thread count less one
  // (at least one), leaving a core to the writer.
  std::size_t verify_threads = 0;
  // Threads that serve REQ and COUNT from storage. Default: 2.
  std::size_t reader_threads = 2;

  // Events waiting for verification; when full, Session::on_message and submit() wait.
  // Default: 4096.
  std::size_t ingest_queue_capacity = 4096;
  // Verified events waiting for the writer. Default: 8192.
  std::size_t write_queue_capacity = 8192;
  // Most events in one group commit. Default: 1024.
  std::size_t max_write_batch = 1024;
  // How long the writer holds a group commit open for more events, in microseconds, while other
  // clients are writing at the same time (the last commit held more than one event). Every
  // commit costs a sync and a set of index pages whatever it holds, so fewer, larger commits
  // cost less CPU and fewer disk writes per event at moderate load, and those OKs come up to
  // the delay later. A client that waits for each OK before sending the next is not held.
  // Durability is unchanged: an OK still follows its commit. Default: 0 (commit at once).
  std::uint32_t commit_delay_micros = 0;
  // Committed events waiting for fan-out (deferred dispatch) before the writer waits for it.
  // Bounds how far fan-out may lag behind the OKs, and the memory those events hold.
  // Default: 16384.
  std::size_t dispatch_queue_capacity = 16384;
  // REQ and COUNT jobs one session may have waiting for a reader; past it, a REQ or COUNT is
  // refused with CLOSED "rate-limited:". Default: 64.
  std::size_t max_queued_queries = 64;
  // How long one query runs on a reader before it yields to other sessions' work, in
  // microseconds. Readers take sessions in turn, so one session's queries delay another's by at
  // most a slice per reader. Default: 10000 (10 ms).
  std::uint32_t query_slice_micros = 10000;

  // NIP-77 syncing. Default: see NegentropyLimits.
  NegentropyLimits negentropy;

  // Default: kDeferred.
  DispatchMode dispatch = DispatchMode::kDeferred;

  // A session whose connection has more than this many bytes queued is closed as a slow
  // consumer. History is produced only while less than half of it is queued; past that, the
  // query parks, holding no thread, until the connection drains. Default: 4 MiB.
  std::size_t max_outbound_bytes = 4u << 20;
  // Commits a change listener may fall behind by; past it the oldest are dropped and the next
  // ChangeBatch it gets has `gap` set. Default: 10000.
  std::size_t max_queued_changes = 10000;

  // A session whose history stays parked on a full connection this long is closed as a slow
  // consumer, in milliseconds. Default: 10000.
  std::uint32_t slow_reader_timeout_ms = 10000;

  // Events dated further ahead than this are refused. Default: 900 (15 minutes).
  std::int64_t max_future_seconds = 900;

  // NIP-42. When true, sessions send an AUTH challenge on open.
  bool auth_on_connect = false;
  // The relay URL that NIP-42 auth events must name (e.g. "wss://relay.example.com").
  std::string relay_url;

  // How often expired events are purged, in seconds; 0 disables. Default: 60.
  std::uint32_t purge_interval_seconds = 60;

  // How long, how many and how much the relay keeps; applied by the writer in its idle time.
  // Default: no rules, everything is kept.
  RetentionRules retention;

  RelayInfo info;

  // Where relaycore reports failures it cannot tell a client (storage and audit errors, host
  // code that threw, what shutdown lost). Default: null, meaning new_stderr_logger(log_level).
  std::shared_ptr<Logger> logger;
  // Messages below this level are neither built nor passed to `logger`. Default: kInfo.
  LogLevel log_level = LogLevel::kInfo;
};

}  // namespace relaycore
