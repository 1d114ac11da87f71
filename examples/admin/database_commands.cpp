// compact, backup, verify and stats: the database file itself, through SQLite. Only compact
// writes; the others open the database read-only and are safe while a relay runs on it.
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "../common/progress.hpp"
#include "admin.hpp"
#include "relaycore/audit.hpp"

namespace relaycore::admin {

using examples::Progress;
namespace {

// Pages copied per backup step, between progress updates.
constexpr int kBackupStepPages = 1024;

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, CloseDb>;

// Opens `path`; read-only unless `write`. Errors go to stderr; null then.
Db open_db(const std::string& path, bool write) {
  sqlite3* raw = nullptr;
  const int flags = write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) {
    fail("cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    return nullptr;
  }
  // A relay's writer holds the lock only for a commit.
  sqlite3_busy_timeout(raw, 10000);
  return db;
}

bool exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) == SQLITE_OK) return true;
  fail(std::string(sql) + ": " + (error ? error : sqlite3_errmsg(db)));
  sqlite3_free(error);
  return false;
}

// Runs `sql` and calls `row` with each row's statement; false (said on stderr) on an error.
template <typename Row>
bool each_row(sqlite3* db, const char* sql, Row row) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    fail(std::string(sql) + ": " + sqlite3_errmsg(db));
    return false;
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) row(raw);
  if (rc != SQLITE_DONE) {
    fail(std::string(sql) + ": " + sqlite3_errmsg(db));
    return false;
  }
  return true;
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// The database with its WAL, as it takes up the disk.
std::uint64_t disk_size(const std::string& db) { return file_size(db) + file_size(db + "-wal"); }

std::string utc(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

int compact(const Args& args) {
  const std::uint64_t before = disk_size(args.db);
  Db db = open_db(args.db, /*write=*/true);
  if (!db) return kExitFailed;
  std::fprintf(stderr, "compact: checkpointing the WAL and rewriting %s\n", args.db.c_str());
  // VACUUM goes through the WAL in WAL mode, so the WAL is checkpointed after it as well.
  if (!exec(db.get(), "PRAGMA wal_checkpoint(TRUNCATE)") || !exec(db.get(), "VACUUM") ||
      !exec(db.get(), "PRAGMA wal_checkpoint(TRUNCATE)")) {
    return kExitFailed;
  }
  db.reset();
  const std::uint64_t after = disk_size(args.db);
  std::printf("size before %llu bytes, after %llu bytes\n", static_cast<unsigned long long>(before),
              static_cast<unsigned long long>(after));
  return kExitOk;
}

int backup(const Args& args) {
  const std::string to = args.get("--to");
  struct stat st {};
  if (::stat(to.c_str(), &st) == 0) return fail("backup: " + to + " exists; it is not replaced");
  Db source = open_db(args.db, /*write=*/false);
  if (!source) return kExitFailed;
  sqlite3* raw_dest = nullptr;
  if (sqlite3_open_v2(to.c_str(), &raw_dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    Db dest(raw_dest);
    return fail("cannot create " + to + ": " + sqlite3_errmsg(raw_dest));
  }
  Db dest(raw_dest);
  // One read transaction for the whole copy: every step sees the same snapshot, so the copy is
  // consistent and does not start over when the relay commits meanwhile (in WAL mode the relay
  // is not held up by it).
  if (!exec(source.get(), "BEGIN") || !exec(source.get(), "SELECT count(*) FROM sqlite_schema")) {
    return kExitFailed;
  }
  sqlite3_backup* copy = sqlite3_backup_init(dest.get(), "main", source.get(), "main");
  if (!copy) return fail("backup: " + std::string(sqlite3_errmsg(dest.get())));
  int rc = SQLITE_OK;
  {
    Progress progress("backup", "pages", 0);
    int copied = 0;
    for (;;) {
      rc = sqlite3_backup_step(copy, kBackupStepPages);
      if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      if (rc != SQLITE_OK && rc != SQLITE_DONE) break;
      const int total = sqlite3_backup_pagecount(copy);
      const int done = total - sqlite3_backup_remaining(copy);
      progress.set_total(static_cast<std::uint64_t>(total));
      progress.add(static_cast<std::uint64_t>(done - copied));
      copied = done;
      if (rc == SQLITE_DONE) break;
    }
  }
  sqlite3_backup_finish(copy);
  exec(source.get(), "COMMIT");
  if (rc != SQLITE_DONE) return fail("backup: " + std::string(sqlite3_errstr(rc)));
  // The copy stands alone: no WAL beside it.
  if (!exec(dest.get(), "PRAGMA wal_checkpoint(TRUNCATE)")) return kExitFailed;
  dest.reset();
  std::printf("backed up %s to %s (%llu bytes)\n", args.db.c_str(), to.c_str(),
              static_cast<unsigned long long>(disk_size(to)));
  return kExitOk;
}

int verify(const Args& args) {
  Db db = open_db(args.db, /*write=*/false);
  if (!db) return kExitFailed;
  std::string problems;
  if (!each_row(db.get(), "PRAGMA integrity_check", [&](sqlite3_stmt* s) {
        const char* text = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        if (text && std::string(text) != "ok") problems += std::string("  ") + text + "\n";
      })) {
    return kExitFailed;
  }
  int status = kExitOk;
  if (problems.empty()) {
    std::printf("database: ok\n");
  } else {
    std::printf("database: integrity check failed:\n%s", problems.c_str());
    status = kExitFailed;
  }
  if (args.has("--audit")) {
    Result<AuditVerifyReport> report = verify_audit_log(args.get("--audit"));
    if (!report) {
      std::printf("audit log: %s\n", report.error().message().c_str());
      status = kExitFailed;
    } else if (!report->ok) {
      std::printf("audit log: bad record %llu: %s\n",
                  static_cast<unsigned long long>(report->first_bad_seq), report->problem.c_str());
      status = kExitFailed;
    } else {
      std::printf("audit log: ok, %llu records\n",
                  static_cast<unsigned long long>(report->records));
    }
  }
  return status;
}

int stats(const Args& args) {
  Db db = open_db(args.db, /*write=*/false);
  if (!db) return kExitFailed;
  std::int64_t count = 0, oldest = 0, newest = 0;
  std::string by_kind;
  const bool read =
      each_row(db.get(), "SELECT count(*), min(created_at), max(created_at) FROM events",
               [&](sqlite3_stmt* s) {
                 count = sqlite3_column_int64(s, 0);
                 oldest = sqlite3_column_int64(s, 1);
                 newest = sqlite3_column_int64(s, 2);
               }) &&
      each_row(db.get(), "SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind",
               [&](sqlite3_stmt* s) {
                 char line[64];
                 std::snprintf(line, sizeof line, "  %-8lld %lld\n",
                               static_cast<long long>(sqlite3_column_int64(s, 0)),
                               static_cast<long long>(sqlite3_column_int64(s, 1)));
                 by_kind += line;
               });
  if (!read) return kExitFailed;
  // What [retention] max-bytes limits, kept by the relay since schema version 6; a file no
  // relay of that version has opened yet does not have it.
  std::optional<std::int64_t> json_bytes;
  bool tracked = false;
  if (!each_row(db.get(), "SELECT count(*) FROM sqlite_master WHERE name = 'stored_bytes'",
                [&](sqlite3_stmt* s) { tracked = sqlite3_column_int64(s, 0) > 0; })) {
    return kExitFailed;
  }
  if (tracked && !each_row(db.get(), "SELECT bytes FROM stored_bytes",
                           [&](sqlite3_stmt* s) { json_bytes = sqlite3_column_int64(s, 0); })) {
    return kExitFailed;
  }
  std::printf("events: %lld\n", static_cast<long long>(count));
  if (count > 0) {
    std::printf("oldest: %s (%lld)\n", utc(oldest).c_str(), static_cast<long long>(oldest));
    std::printf("newest: %s (%lld)\n", utc(newest).c_str(), static_cast<long long>(newest));
  }
  std::printf("size: %llu bytes (database %llu, WAL %llu)\n",
              static_cast<unsigned long long>(disk_size(args.db)),
              static_cast<unsigned long long>(file_size(args.db)),
              static_cast<unsigned long long>(file_size(args.db + "-wal")));
  if (json_bytes) {
    std::printf("events' JSON: %lld bytes (what max-bytes limits)\n",
                static_cast<long long>(*json_bytes));
  }
  std::printf("by kind (kind, events):\n%s", by_kind.c_str());
  return kExitOk;
}

}  // namespace relaycore::admin
