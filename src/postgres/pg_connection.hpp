// One libpq connection that reconnects by itself, with backoff, and the parameter and result
// helpers the storage's statements use. A connection is used by one thread at a time (the
// writer's mutex or a pool lease guarantees it), so nothing here locks.
#pragma once

#include <libpq-fe.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/postgres.hpp"
#include "relaycore/status.hpp"
#include "storage/filter_sql.hpp"
#include "util/string_map.hpp"

namespace relaycore::postgres {

// Statement parameters for PQexecParams, all sent in binary form: int8, bytea and text.
// Values are referenced, not copied (except integers), so they must outlive the call.
class PgParams {
 public:
  PgParams& add_int(std::int64_t value);
  PgParams& add_bytes(const void* data, std::size_t size);
  PgParams& add_bytes(const Bytes32& bytes) { return add_bytes(bytes.data(), bytes.size()); }
  PgParams& add_bytes(std::string_view bytes) { return add_bytes(bytes.data(), bytes.size()); }
  // UTF-8 text (the canonical JSON); bytes without a NUL.
  PgParams& add_text(std::string_view text);
  // NULL, its type inferred by the server from where it is used.
  PgParams& add_null();
  // A filter value: integers as int8, text and ids as bytea (the schema keeps tag values as
  // bytea, since NIP-01 strings may hold NUL, which PostgreSQL text cannot).
  PgParams& add(const storage::SqlParam& param);
  // One-dimensional arrays without NULLs, for unnest().
  PgParams& add_int_array(const std::vector<std::int64_t>& values);
  PgParams& add_bytes_array(const std::vector<std::string_view>& values);
  PgParams& add_bytes_array(std::span<const Bytes32> values);

  int size() const noexcept { return static_cast<int>(values_.size()); }
  const Oid* types() const noexcept { return types_.data(); }
  const char* const* values() const noexcept { return values_.data(); }
  const int* lengths() const noexcept { return lengths_.data(); }
  const int* formats() const noexcept { return formats_.data(); }

 private:
  PgParams& push(Oid type, const char* data, std::size_t size);

  std::vector<Oid> types_;
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  // Owned encodings (integers, arrays); a deque keeps their addresses stable.
  std::deque<std::string> owned_;
};

// A result, freed when it goes away.
using PgResult = std::unique_ptr<PGresult, decltype(&PQclear)>;

// Reads of binary result columns.
std::int64_t get_int(const PGresult* res, int row, int col) noexcept;
std::string_view get_bytes(const PGresult* res, int row, int col) noexcept;
bool get_bytes32(const PGresult* res, int row, int col, Bytes32& out) noexcept;

// "error: storage: PostgreSQL <what> (<SQLSTATE>)". Only the SQLSTATE code is passed on: the
// server's message can name hosts, users and schema, which clients must not see.
Status pg_error(std::string_view what, const PGresult* res);

// The SQLSTATE of a failed result ("" when there is none, e.g. a lost connection).
std::string_view sqlstate(const PGresult* res) noexcept;

class PgConnection {
 public:
  explicit PgConnection(const PostgresOptions& options) : options_(options) {}
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Makes sure the connection is up: reconnects when it was lost and the backoff has passed.
  // Fails at once, without trying, while the backoff runs.
  Status ensure();

  // Runs one statement (a static one is prepared once per connection and reused) and returns
  // its complete result, or the error. A statement that returns rows yields PGRES_TUPLES_OK.
  Result<PgResult> exec(std::string_view sql, const PgParams& params = PgParams(),
                        bool prepare = true);

  // Runs a statement and hands its rows to `row` one at a time as they arrive, so a large
  // result is never held whole. `row` returns false to stop; the rest is cancelled.
  Status for_each_row(std::string_view sql, const PgParams& params,
                      const std::function<bool(const PGresult*)>& row);

  // Runs a statement without parameters, for BEGIN/COMMIT/ROLLBACK and schema text.
  Status run(std::string_view sql, std::string_view what);

  // Transactions. While one is open a lost connection is not replaced, since the statements
  // after the loss would run outside it: every call fails until rollback() ends it.
  Status begin();
  Status commit();
  // Ends the transaction whatever its state; the server rolls back on its own when the
  // connection is gone. A failed ROLLBACK closes the connection (which ends the transaction on
  // the server) and is returned, for the caller to report with the failure that caused it.
  Status rollback();

  // The SQLSTATE of the last failure ("" for a lost connection), to tell a retryable conflict
  // (deadlock, unique violation from a concurrent insert) from a real error.
  const std::string& last_sqlstate() const noexcept { return last_sqlstate_; }

  // libpq's own text for the last failed connection attempt. It can name hosts and users, so it
  // goes to the host that opens the storage, never into statuses that reach clients.
  const std::string& connect_error() const noexcept { return connect_error_; }

 private:
  // Records a failure: a broken connection is closed, so the next ensure() reconnects.
  Status fail(std::string_view what, const PGresult* res);
  void close() noexcept;
  Status connect();
  // The name of the prepared statement for `sql`, preparing it on first use.
  Result<std::string> prepared(std::string_view sql, const PgParams& params);

  using Clock = std::chrono::steady_clock;

  const PostgresOptions& options_;
  PGconn* conn_ = nullptr;
  StringMap<std::string> statements_;
  Clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};
  bool in_transaction_ = false;
  std::string last_sqlstate_;
  std::string connect_error_;
};

}  // namespace relaycore::postgres
