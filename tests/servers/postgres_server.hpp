// A throwaway PostgreSQL server for tests: initdb into a fresh temporary directory, the server on
// a free loopback TCP port with trust authentication, and everything removed afterwards. It uses
// the Debian package's binaries under /usr/lib/postgresql/<version>/bin (never /usr/local/bin).
//
// PostgreSQL refuses to run as root, so when the test runs as root the server runs as the
// `postgres` system user (setpriv, with the directory handed to that user); otherwise as the
// test's own user.
//
//   test_servers::PostgresServer pg;
//   REQUIRE(pg.start());                       // false: pg.error() says why
//   auto db = pg.create_database();            // an empty database of its own
//   options.conninfo = pg.conninfo(*db);
//   pg.stop();  ...  REQUIRE(pg.start());      // a clean restart on the same port and data
//                                              // (restart() does both at once)
//   pg.kill();  ...  REQUIRE(pg.start());      // a crash, then crash recovery
//
// Set RELAYCORE_PG_TEMPLATE to a directory made by make_template() and servers copy it instead of
// running initdb.
//
// The server process is a child of the test and gets SIGKILL if the thread that started it
// dies, so a crashed test leaves no server behind: call start() from a thread that outlives the
// server (the test's own thread). Not thread-safe; one thread drives it.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "conformance/temp_dir.hpp"
#include "examples/child_process.hpp"
#include "servers/free_port.hpp"

namespace relaycore::test_servers {

class PostgresServer {
 public:
  // The newest /usr/lib/postgresql/<version>/bin holding initdb, postgres and psql; empty when
  // the server package is not installed.
  static std::string bin_dir() {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::string best;
    int best_version = -1;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      const std::string bin = entry.path().string() + "/bin";
      const std::string name = entry.path().filename().string();
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      if (!is_executable(bin + "/initdb") || !is_executable(bin + "/postgres") ||
          !is_executable(bin + "/psql")) {
        continue;
      }
      if (std::stoi(name) > best_version) {
        best_version = std::stoi(name);
        best = bin;
      }
    }
    return best;
  }

  PostgresServer() = default;
  ~PostgresServer() { stop(); }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Initialises the data directory on first use, starts the server and waits until it accepts
  // connections (crash recovery after kill() included). False on failure; see error().
  bool start() {
    if (process_) return true;
    if (!prepare()) return false;
    // After kill(), the old server's backends may hold its shared memory for a moment.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!launch()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return true;
  }

  // Why the last start() or create_database() failed, with the end of the server log.
  const std::string& error() const { return error_; }

  bool running() const { return process_ != nullptr; }
  int port() const { return port_; }

  // A libpq connection string for `dbname`, as the superuser "postgres" over loopback TCP.
  std::string conninfo(const std::string& dbname = "postgres") const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
  }

  // Creates an empty database and returns its name ("t1", "t2", ...), so that each test case
  // can have a database of its own on one server.
  std::optional<std::string> create_database() {
    const std::string name = "t" + std::to_string(++databases_);
    if (!psql("CREATE DATABASE " + name)) return std::nullopt;
    return name;
  }

  // Runs one SQL command through psql on the "postgres" database; false when it fails.
  bool psql(const std::string& sql, const std::string& dbname = "postgres") {
    examples_test::ChildProcess p(
        {bin_ + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo(dbname), "-c", sql});
    (void)p.read_all(std::chrono::seconds(30));
    const int code = p.wait(std::chrono::seconds(30));
    if (code != 0) error_ = "psql failed (exit " + std::to_string(code) + "): " + sql;
    return code == 0;
  }

  // Servers copy this initdb'd data directory, when the variable names one, instead of running
  // initdb (most of a server's start-up time); tests/postgres has ctest make it once per run.
  static constexpr const char* kTemplateEnv = "RELAYCORE_PG_TEMPLATE";

  // Runs initdb and leaves a copy of the result at `to` (replacing what was there), for
  // kTemplateEnv. False on failure; see error().
  bool make_template(const std::string& to) {
    std::error_code ec;
    std::filesystem::remove_all(to, ec);
    ::unsetenv(kTemplateEnv);
    if (!prepare()) return false;
    std::filesystem::copy(data(), to, std::filesystem::copy_options::recursive, ec);
    if (ec) return fail("cannot copy the data directory to " + to + ": " + ec.message());
    return true;
  }

  // Fast shutdown (SIGINT): clients are disconnected, the data stays; start() brings the server
  // back on the same port.
  void stop() {
    if (!process_) return;
    ::kill(process_->pid(), SIGINT);
    (void)process_->wait(std::chrono::seconds(30));  // SIGKILL if it takes longer
    process_.reset();
  }

  // SIGKILL to the postmaster, as a crash or an OOM kill would; start() then runs recovery.
  void kill() { process_.reset(); }

  // stop() then start(): a clean restart on the same port and data.
  bool restart() {
    stop();
    return start();
  }

 private:
  static bool is_executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

  // The command as the user the server runs as, with its output appended to server.log and the
  // parent-death signal set, through sh so that the redirection needs no code here.
  std::vector<std::string> command(const std::string& line) const {
    std::string drop;
    if (::geteuid() == 0) {
      drop = "--reuid=postgres --regid=postgres --init-groups ";
    }
    return {"/bin/sh", "-c",
            "cd " + dir_->path() + " && exec setpriv " + drop + "--pdeathsig KILL -- " + line +
                " >>" + dir_->file("server.log") + " 2>&1"};
  }

  bool fail(const std::string& why) {
    error_ = why;
    std::ifstream log(dir_ ? dir_->file("server.log") : std::string());
    std::stringstream text;
    text << log.rdbuf();
    std::string tail = text.str();
    if (tail.size() > 2000) tail = tail.substr(tail.size() - 2000);
    if (!tail.empty()) error_ += "\n--- server.log ---\n" + tail;
    return false;
  }

  // The directory, the port and the data directory, once: a copy of the template when there is
  // one, else initdb.
  bool prepare() {
    if (prepared_) return true;
    bin_ = bin_dir();
    if (bin_.empty()) {
      error_ =
          "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
          "(scripts/install-deps installs the postgresql package)";
      return false;
    }
    if (!dir_) {
      dir_ = std::make_unique<conformance::TempDir>();
      if (dir_->path().empty()) return fail("cannot create a temporary directory");
      if (::geteuid() == 0) {
        const passwd* pw = ::getpwnam("postgres");
        if (pw == nullptr) return fail("running as root and there is no postgres user");
        uid_ = pw->pw_uid;
        gid_ = pw->pw_gid;
        if (::chown(dir_->path().c_str(), uid_, gid_) != 0) {
          return fail("cannot give the temporary directory to postgres");
        }
      }
    }
    port_ = free_loopback_port();
    if (port_ == 0) return fail("no free loopback port");
    const char* from = std::getenv(kTemplateEnv);
    if (from != nullptr && *from != '\0' && copy_tree(from, data())) {
      prepared_ = true;
      return true;
    }
    examples_test::ChildProcess initdb(
        command(bin_ + "/initdb -D " + data() +
                " -U postgres -A trust -E UTF8 --locale=C --no-sync --no-instructions"));
    (void)initdb.read_all(std::chrono::seconds(120));
    if (initdb.wait(std::chrono::seconds(120)) != 0) return fail("initdb failed");
    prepared_ = true;
    return true;
  }

  // Copies an initdb'd data directory (it must hold PG_VERSION) to `to`, giving it to the server
  // user with the 0700 mode the server insists on. False, with nothing left at `to`, on failure.
  bool copy_tree(const std::string& from, const std::string& to) const {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(from + "/PG_VERSION", ec)) return false;
    fs::copy(from, to, fs::copy_options::recursive, ec);
    if (!ec) fs::permissions(to, fs::perms::owner_all, ec);
    if (!ec && ::geteuid() == 0 && uid_ != 0) {
      bool owned = ::lchown(to.c_str(), uid_, gid_) == 0;
      for (auto it = fs::recursive_directory_iterator(to, ec);
           owned && !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        owned = ::lchown(it->path().c_str(), uid_, gid_) == 0;
      }
      if (!owned) ec = std::make_error_code(std::errc::operation_not_permitted);
    }
    if (ec) fs::remove_all(to, ec);
    return !ec;
  }

  std::string data() const { return dir_->file("data"); }

  // Starts the postmaster and waits for it to be ready; false (and the process gone) when it
  // exits or does not get ready in time.
  bool launch() {
    // fsync is off: these servers hold test data only and fsync would slow the suite down on a
    // busy machine. A killed server (a process crash) still loses nothing it committed, since
    // the written WAL is in the OS page cache; only power loss could lose it.
    auto process = std::make_unique<examples_test::ChildProcess>(
        command(bin_ + "/postgres -D " + data() + " -p " + std::to_string(port_) +
                " -c listen_addresses=127.0.0.1 -c unix_socket_directories=" + dir_->path() +
                " -c fsync=off -c full_page_writes=off" +
                " -c max_connections=200 -c shared_buffers=16MB"));
    if (!process->started()) return fail("cannot start postgres");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (exited(process->pid())) return fail("postgres exited at startup");
      if (ready(process->pid())) {
        process_ = std::move(process);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return fail("postgres did not get ready within 60 s");
  }

  // True when the process is gone or a zombie (it is reaped by ChildProcess).
  static bool exited(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    const std::size_t close = line.rfind(')');
    return close == std::string::npos || line.substr(close + 2, 1) == "Z";
  }

  // The postmaster writes "ready" on line 8 of postmaster.pid once it accepts connections.
  bool ready(pid_t pid) const {
    std::ifstream file(data() + "/postmaster.pid");
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(file, line)) lines.push_back(line);
    return lines.size() >= 8 && lines[0] == std::to_string(pid) && lines[7].rfind("ready", 0) == 0;
  }

  std::string bin_;
  std::unique_ptr<conformance::TempDir> dir_;
  bool prepared_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  int databases_ = 0;
  std::unique_ptr<examples_test::ChildProcess> process_;
  std::string error_;
};

}  // namespace relaycore::test_servers
