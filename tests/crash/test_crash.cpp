// Crash test: a child relay ingesting under load is killed with SIGKILL at random moments, 20
// times over the same database. After each kill, every event that got OK true must be stored,
// the audit chain must verify, SQLite's integrity check must pass, and reopening the relay must
// reconcile the audit log with the store.
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "relaycore/audit.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"

using namespace relaycore;

namespace {

// Runs the child for `run_for`, kills it, and returns the ids it printed.
std::vector<std::string> run_and_kill(const std::string& dir, std::chrono::milliseconds run_for) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl(RELAYCORE_CRASH_CHILD, RELAYCORE_CRASH_CHILD, dir.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  // The kill is timed from the first OK, so a slow start (a sanitizer build, a busy machine)
  // does not turn a round into a kill before any ingest.
  std::string out;
  char buf[65536];
  ssize_t n = 0;
  pollfd pfd{fds[0], POLLIN, 0};
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (out.find('\n') == std::string::npos && std::chrono::steady_clock::now() < give_up) {
    if (::poll(&pfd, 1, 100) > 0) {
      n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  std::this_thread::sleep_for(run_for);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status));
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  std::vector<std::string> ids;
  std::size_t start = 0;
  while (start < out.size()) {
    std::size_t end = out.find('\n', start);
    if (end == std::string::npos) break;  // a torn last line never got its OK printed whole
    ids.push_back(out.substr(start, end - start));
    start = end + 1;
  }
  return ids;
}

// The first column of the first row of `sql`, run against `path` (with the events database
// attached as "ev" when given).
std::string query_one(const std::string& path, const std::string& sql,
                      const std::string& attach = "") {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  if (!attach.empty()) {
    std::string a = "ATTACH DATABASE '" + attach + "' AS ev";
    REQUIRE(sqlite3_exec(db, a.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string result;
  if (sqlite3_step(st) == SQLITE_ROW) {
    result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return result;
}

std::string integrity_check(const std::string& path) {
  return query_one(path, "PRAGMA integrity_check");
}

}  // namespace

TEST_CASE("Acked events survive SIGKILL, and audit chain and database stay sound", "[crash]") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("relaycore-crash-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pause_ms(20, 700);

  std::set<std::string> acked;
  int rounds_with_acks = 0;
  std::uint64_t rounds_with_replaceable = 0;
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    std::vector<std::string> ids =
        run_and_kill(dir.string(), std::chrono::milliseconds(pause_ms(rng)));
    acked.insert(ids.begin(), ids.end());

    CHECK(integrity_check((dir / "events.db").string()) == "ok");
    CHECK(integrity_check((dir / "audit.db").string()) == "ok");
    Result<AuditVerifyReport> report = verify_audit_log((dir / "audit.db").string());
    REQUIRE(report.is_ok());
    INFO(report->problem);
    CHECK(report->ok);

    SqliteOptions so;
    so.path = (dir / "events.db").string();
    std::shared_ptr<Storage> storage = new_sqlite_storage(so).value();
    std::size_t missing = 0, replaceable_acked = 0;
    for (const std::string& line : ids) {
      const bool replaceable = line.rfind("10002 ", 0) == 0;
      EventId id{};
      REQUIRE(from_hex(line.substr(line.find(' ') + 1), id));
      const bool stored = storage->contains(id).value();
      if (replaceable) {
        // An acked version may since have been replaced by a winning one (possibly committed
        // but not yet acked when the kill came), but one version per child key survives.
        ++replaceable_acked;
      } else if (!stored) {
        ++missing;
      }
    }
    CHECK(missing == 0);
    // Every child signs with a fresh key, so each round with an acked kind 10002 leaves at
    // least one stored version of its own.
    rounds_with_replaceable += replaceable_acked > 0;
    Filter replaceables = parse_filter(R"({"kinds":[10002]})").value();
    CHECK(storage->count({replaceables}, QueryRequest{}).value() >= rounds_with_replaceable);
    rounds_with_acks += !ids.empty();
  }
  CHECK(acked.size() > 100);
  CHECK(rounds_with_acks == 20);

  // Reopening reconciles: the audit log then covers every stored event.
  {
    Options options;
    options.sqlite.path = (dir / "events.db").string();
    SqliteAuditOptions ao;
    ao.path = (dir / "audit.db").string();
    options.audit = new_sqlite_audit_log(ao).value();
    std::unique_ptr<Relay> relay = Relay::open(std::move(options)).value();
    CHECK(relay->shutdown().message() == "");
  }
  Result<AuditVerifyReport> report = verify_audit_log((dir / "audit.db").string());
  REQUIRE(report.is_ok());
  CHECK(report->ok);
  CHECK(query_one((dir / "audit.db").string(),
                  "SELECT count(*) FROM ev.events WHERE seq NOT IN "
                  "(SELECT event_seq FROM records WHERE action IN (1, 4))",
                  (dir / "events.db").string()) == "0");
  std::filesystem::remove_all(dir);
}
