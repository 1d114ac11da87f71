#include "postgres/pg_connection.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace relaycore::postgres {
namespace {

// Type OIDs from pg_type, stable across PostgreSQL versions.
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaArrayOid = 1001;
constexpr Oid kInt8ArrayOid = 1016;

constexpr int kBinary = 1;

void put_be(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// The binary array header of a one-dimensional array without NULLs.
std::string array_header(Oid element, std::size_t n) {
  std::string out;
  put_be(out, 1, 4);  // dimensions
  put_be(out, 0, 4);  // no NULLs
  put_be(out, element, 4);
  put_be(out, n, 4);  // length
  put_be(out, 1, 4);  // lower bound
  return out;
}

}  // namespace

PgParams& PgParams::push(Oid type, const char* data, std::size_t size) {
  types_.push_back(type);
  values_.push_back(data);
  lengths_.push_back(static_cast<int>(size));
  formats_.push_back(kBinary);
  return *this;
}

PgParams& PgParams::add_int(std::int64_t value) {
  std::string& s = owned_.emplace_back();
  put_be(s, static_cast<std::uint64_t>(value), 8);
  return push(kInt8Oid, s.data(), s.size());
}

PgParams& PgParams::add_bytes(const void* data, std::size_t size) {
  // libpq sends a NULL pointer as SQL NULL, so an empty value needs a real address.
  static const char kEmpty = 0;
  const char* p = size == 0 ? &kEmpty : static_cast<const char*>(data);
  return push(kByteaOid, p, size);
}

PgParams& PgParams::add_text(std::string_view text) {
  static const char kEmpty = 0;
  return push(kTextOid, text.empty() ? &kEmpty : text.data(), text.size());
}

PgParams& PgParams::add_null() { return push(0, nullptr, 0); }

PgParams& PgParams::add(const storage::SqlParam& param) {
  if (const auto* n = std::get_if<std::int64_t>(&param)) return add_int(*n);
  if (const auto* text = std::get_if<std::string_view>(&param)) return add_bytes(*text);
  if (const auto* tag = std::get_if<storage::TagValue>(&param)) return add_bytes(tag->value);
  return add_bytes(*std::get<const Bytes32*>(param));
}

PgParams& PgParams::add_int_array(const std::vector<std::int64_t>& values) {
  std::string& s = owned_.emplace_back(array_header(kInt8Oid, values.size()));
  for (std::int64_t v : values) {
    put_be(s, 8, 4);
    put_be(s, static_cast<std::uint64_t>(v), 8);
  }
  return push(kInt8ArrayOid, s.data(), s.size());
}

PgParams& PgParams::add_bytes_array(const std::vector<std::string_view>& values) {
  std::string& s = owned_.emplace_back(array_header(kByteaOid, values.size()));
  for (std::string_view v : values) {
    put_be(s, v.size(), 4);
    s.append(v);
  }
  return push(kByteaArrayOid, s.data(), s.size());
}

PgParams& PgParams::add_bytes_array(std::span<const Bytes32> values) {
  std::vector<std::string_view> views;
  views.reserve(values.size());
  for (const Bytes32& v : values) {
    views.emplace_back(reinterpret_cast<const char*>(v.data()), v.size());
  }
  return add_bytes_array(views);
}

std::int64_t get_int(const PGresult* res, int row, int col) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(res, row, col));
  const int n = PQgetlength(res, row, col);
  std::uint64_t value = 0;
  for (int i = 0; i < n; ++i) value = (value << 8) | p[i];
  // Sign-extend the narrower integer types (int2, int4).
  if (n > 0 && n < 8 && (p[0] & 0x80) != 0) value |= ~std::uint64_t{0} << (8 * n);
  return static_cast<std::int64_t>(value);
}

std::string_view get_bytes(const PGresult* res, int row, int col) noexcept {
  return std::string_view(PQgetvalue(res, row, col),
                          static_cast<std::size_t>(PQgetlength(res, row, col)));
}

bool get_bytes32(const PGresult* res, int row, int col, Bytes32& out) noexcept {
  std::string_view bytes = get_bytes(res, row, col);
  if (bytes.size() != out.size()) return false;
  std::memcpy(out.data(), bytes.data(), out.size());
  return true;
}

std::string_view sqlstate(const PGresult* res) noexcept {
  const char* code = res == nullptr ? nullptr : PQresultErrorField(res, PG_DIAG_SQLSTATE);
  return code == nullptr ? std::string_view() : std::string_view(code);
}

Status pg_error(std::string_view what, const PGresult* res) {
  std::string message = "storage: PostgreSQL ";
  message.append(what);
  std::string_view code = sqlstate(res);
  message.append(code.empty() ? std::string_view(" (connection lost)") : std::string_view(" ("));
  if (!code.empty()) {
    message.append(code);
    message.push_back(')');
  }
  return Status::error(message);
}

PgConnection::~PgConnection() { close(); }

void PgConnection::close() noexcept {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
  statements_.clear();
}

Status PgConnection::begin() {
  last_sqlstate_.clear();
  if (Status s = run("BEGIN", "cannot begin a transaction"); !s) return s;
  in_transaction_ = true;
  return Status::ok();
}

Status PgConnection::commit() {
  Status s = run("COMMIT", "commit failed");
  in_transaction_ = false;
  return s;
}

Status PgConnection::rollback() {
  Status status;
  if (in_transaction_ && conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) {
    PgResult res(PQexec(conn_, "ROLLBACK"), &PQclear);
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      status = fail("rollback failed", res.get());
      // The server may still hold the transaction open; dropping the connection ends it, and
      // the next call connects afresh.
      close();
    }
  }
  in_transaction_ = false;
  return status;
}

Status PgConnection::ensure() {
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return Status::ok();
  if (in_transaction_) return Status::error("storage: PostgreSQL connection lost in a transaction");
  close();
  if (Clock::now() < next_attempt_) {
    return Status::error("storage: PostgreSQL is unreachable (waiting to reconnect)");
  }
  Status s = connect();
  if (s) {
    backoff_ = std::chrono::milliseconds(0);
    return s;
  }
  close();
  const std::chrono::milliseconds min(std::max<std::uint32_t>(options_.reconnect_min_ms, 1));
  const std::chrono::milliseconds max(
      std::max(options_.reconnect_max_ms, options_.reconnect_min_ms));
  backoff_ = backoff_.count() == 0 ? min : std::min(backoff_ * 2, max);
  next_attempt_ = Clock::now() + backoff_;
  return s;
}

Status PgConnection::connect() {
  // Our defaults come first and the user's conninfo (expanded from dbname) after it, so that
  // anything the user wrote wins.
  const std::string timeout = std::to_string(options_.connect_timeout_s);
  const std::string user_timeout = std::to_string(options_.tcp_user_timeout_ms);
  std::vector<const char*> keys = {"connect_timeout", "application_name", "dbname"};
  std::vector<const char*> values = {timeout.c_str(), "relaycore", options_.conninfo.c_str()};
  if (options_.tcp_user_timeout_ms != 0) {
    keys.insert(keys.begin(), "tcp_user_timeout");
    values.insert(values.begin(), user_timeout.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    connect_error_ = conn_ == nullptr ? "out of memory" : PQerrorMessage(conn_);
    while (!connect_error_.empty() && connect_error_.back() == '\n') connect_error_.pop_back();
    return Status::error("storage: PostgreSQL connection failed");
  }
  connect_error_.clear();
  const std::string setup =
      "SET statement_timeout = " + std::to_string(options_.statement_timeout_ms) +
      "; SET client_min_messages = warning";
  PgResult res(PQexec(conn_, setup.c_str()), &PQclear);
  if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) return pg_error("setup failed", res.get());
  return Status::ok();
}

Status PgConnection::fail(std::string_view what, const PGresult* res) {
  Status s = pg_error(what, res);
  last_sqlstate_ = std::string(sqlstate(res));
  if (conn_ != nullptr && PQstatus(conn_) != CONNECTION_OK) {
    close();  // lost: the next call reconnects at once, and backs off if that fails
    next_attempt_ = Clock::time_point{};
  }
  return s;
}

Result<std::string> PgConnection::prepared(std::string_view sql, const PgParams& params) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  std::string key(sql);
  std::string name = "relaycore_" + std::to_string(statements_.size() + 1);
  PgResult res(PQprepare(conn_, name.c_str(), key.c_str(), params.size(), params.types()),
               &PQclear);
  if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) return fail("prepare failed", res.get());
  statements_.emplace(std::move(key), name);
  return name;
}

Result<PgResult> PgConnection::exec(std::string_view sql, const PgParams& params, bool prepare) {
  if (Status s = ensure(); !s) return s;
  PGresult* raw = nullptr;
  if (prepare) {
    auto name = prepared(sql, params);
    if (!name) return std::move(name).error();
    raw = PQexecPrepared(conn_, name->c_str(), params.size(), params.values(), params.lengths(),
                         params.formats(), kBinary);
  } else {
    const std::string text(sql);
    raw = PQexecParams(conn_, text.c_str(), params.size(), params.types(), params.values(),
                       params.lengths(), params.formats(), kBinary);
  }
  PgResult res(raw, &PQclear);
  const ExecStatusType st = PQresultStatus(res.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return fail("statement failed", res.get());
  return res;
}

Status PgConnection::for_each_row(std::string_view sql, const PgParams& params,
                                  const std::function<bool(const PGresult*)>& row) {
  if (Status s = ensure(); !s) return s;
  const std::string text(sql);
  if (PQsendQueryParams(conn_, text.c_str(), params.size(), params.types(), params.values(),
                        params.lengths(), params.formats(), kBinary) == 0 ||
      PQsetSingleRowMode(conn_) == 0) {
    return fail("read failed", nullptr);
  }
  Status status;
  bool stopped = false;
  // Every result must be taken, even after an error or a stop, before the connection is free.
  while (PGresult* raw = PQgetResult(conn_)) {
    PgResult res(raw, &PQclear);
    const ExecStatusType st = PQresultStatus(raw);
    if (st == PGRES_SINGLE_TUPLE) {
      if (!stopped && status && !row(raw)) {
        stopped = true;
        if (PGcancel* cancel = PQgetCancel(conn_)) {
          char ignored[256];
          (void)PQcancel(cancel, ignored, sizeof(ignored));
          PQfreeCancel(cancel);
        }
      }
    } else if (st != PGRES_TUPLES_OK && !stopped && status) {
      status = fail("read failed", raw);
      if (conn_ == nullptr) return status;
    }
  }
  return status;
}

Status PgConnection::run(std::string_view sql, std::string_view what) {
  if (Status s = ensure(); !s) return s;
  const std::string text(sql);
  PgResult res(PQexec(conn_, text.c_str()), &PQclear);
  const ExecStatusType st = PQresultStatus(res.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(what, res.get());
  return Status::ok();
}

}  // namespace relaycore::postgres
