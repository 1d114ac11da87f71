// Runs the real relaycore-audit binary (RELAYCORE_AUDIT_TOOL) on files this test writes into
// its own temp dir, and checks its output and exit status.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "test_audit_util.hpp"

using namespace relaycore;

namespace {

struct Run {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Run run_tool(const std::string& args) {
  std::string command = std::string("'") + RELAYCORE_AUDIT_TOOL + "' " + args + " 2>&1";
  Run run;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) run.output.append(buf, n);
  int status = pclose(pipe);
  REQUIRE(WIFEXITED(status));
  run.exit_code = WEXITSTATUS(status);
  return run;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("audit tool verifies a good log", "[audit][tool]") {
  test::TempDir dir;
  std::string path = dir.file("good.db");
  test::write_chain(path, 1, 120);
  Run run = run_tool("verify '" + path + "'");
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output == "ok: 120 records\n");
}

TEST_CASE("audit tool reports the first tampered record", "[audit][tool]") {
  test::TempDir dir;
  std::string path = dir.file("bad.db");
  test::write_chain(path, 1, 120);
  test::tamper(path, "UPDATE records SET kind = kind + 1 WHERE seq = 77");
  Run run = run_tool("verify '" + path + "'");
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(contains(run.output, "bad record 77: "));
}

TEST_CASE("audit tool reports a truncated tail", "[audit][tool]") {
  test::TempDir dir;
  std::string path = dir.file("short.db");
  test::write_chain(path, 1, 120);
  test::tamper(path, "DELETE FROM records WHERE seq > 100");
  Run run = run_tool("verify '" + path + "'");
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(contains(run.output, "bad record 101: truncated tail"));
}

TEST_CASE("audit tool usage errors and help", "[audit][tool]") {
  Run none = run_tool("");
  CHECK(none.exit_code == 2);
  CHECK(contains(none.output, "usage: relaycore-audit verify <file>"));
  Run unknown = run_tool("check x.db");
  CHECK(unknown.exit_code == 2);
  CHECK(contains(unknown.output, "unknown command 'check'"));
  Run extra = run_tool("verify a.db b.db");
  CHECK(extra.exit_code == 2);
  Run help = run_tool("--help");
  CHECK(help.exit_code == 0);
  CHECK(contains(help.output, "verify <file>"));
}

TEST_CASE("audit tool fails on a file it cannot verify", "[audit][tool]") {
  test::TempDir dir;
  Run run = run_tool("verify '" + dir.file("missing.db") + "'");
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(contains(run.output, "relaycore-audit: error: audit: cannot open"));
}
