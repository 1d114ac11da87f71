// relaycore-audit: checks the hash chain of a relaycore audit log.
//
//   relaycore-audit verify <file>
//
// Exit status: 0 when every record checks out, 1 when a record is bad or the file cannot be
// verified at all, 2 on a usage error. Only the public API is used, so the tool checks the
// file exactly as a host embedding relaycore would.
#include <cstdio>
#include <cstring>
#include <string>

#include "relaycore/audit.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitBad = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "usage: relaycore-audit verify <file>\n"
    "       relaycore-audit --help\n";

constexpr const char* kHelp =
    "relaycore-audit: check the tamper-evident hash chain of a relaycore audit log.\n"
    "\n"
    "  verify <file>   recompute every record's hash and check the sequence numbers, the\n"
    "                  chaining of prev_hash and the stored head; opens the file read-only,\n"
    "                  and is safe to run while a relay is appending to it\n"
    "  --help, -h      show this text\n"
    "\n"
    "Prints \"ok: N records\" and exits 0 when the whole chain checks out. Prints\n"
    "\"bad record <seq>: <problem>\" for the first bad record and exits 1; also exits 1 when\n"
    "the file cannot be opened or is not an audit log. Exits 2 on a usage error.\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "relaycore-audit: %s\n%s", message.c_str(), kUsage);
  return kExitUsage;
}

int verify(const std::string& path) {
  relaycore::Result<relaycore::AuditVerifyReport> report = relaycore::verify_audit_log(path);
  if (!report) {
    std::fprintf(stderr, "relaycore-audit: %s\n", report.error().message().c_str());
    return kExitBad;
  }
  if (!report->ok) {
    std::printf("bad record %llu: %s\n", static_cast<unsigned long long>(report->first_bad_seq),
                report->problem.c_str());
    return kExitBad;
  }
  std::printf("ok: %llu records\n", static_cast<unsigned long long>(report->records));
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("missing command");
  std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  if (command != "verify") return usage_error("unknown command '" + command + "'");
  if (argc != 3) return usage_error("verify takes exactly one file");
  if (std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  return verify(argv[2]);
}
