// relaycore-bench-isolation: the processes of benchmarks/run_isolation.sh (see isolation.hpp
// and benchmarks/README.md, "Isolation").
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_corpus.hpp"
#include "isolation.hpp"
#include "relaycore/websocket/client.hpp"

namespace relaycore::isolation {
namespace {

constexpr const char* kUsage =
    "usage: relaycore-bench-isolation COMMAND [flags]   (COMMAND --help for its flags)\n"
    "  seed   build a SQLite store of signed events\n"
    "  probe  healthy clients: REQ->EOSE and EVENT->OK latency\n"
    "  slow   one connection asks for much history and never reads its socket\n"
    "  flood  one connection sends thousands of full-history REQs\n"
    "  heavy  clients run NIP-50 search and 1,000-value #t queries in a loop\n"
    "  readback  connections read stored events back by id, as fast as they come\n";

}  // namespace

void FlagReader::print_usage_and_exit(int code) const {
  std::fputs(usage_, code == 0 ? stdout : stderr);
  std::exit(code);
}

std::size_t to_count(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0') bench::die(flag + " wants a whole number, got " + value);
  return static_cast<std::size_t>(n);
}

std::string latency_json(std::vector<double> samples_ms) {
  const std::size_t n = samples_ms.size();
  const double p50 = bench::quantile(samples_ms, 0.50);
  const double p99 = bench::quantile(samples_ms, 0.99);
  const double p999 = bench::quantile(samples_ms, 0.999);
  const double max = n == 0 ? 0 : samples_ms.back();  // quantile() sorted them
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"count\":%zu}", p50, p99,
                p999, max, n);
  return buf;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string_view hex_after(std::string_view json, std::string_view key) {
  const std::size_t at = json.find(key);
  if (at == std::string_view::npos || json.size() < at + key.size() + 64) return {};
  return json.substr(at + key.size(), 64);
}

void Received::count(std::string_view text) {
  bytes += text.size();
  if (text.starts_with("[\"EVENT\"")) {
    ++events;
  } else if (text.starts_with("[\"EOSE\"")) {
    ++eose;
  } else if (text.starts_with("[\"CLOSED\"")) {
    ++(text.find("\"rate-limited:") != std::string_view::npos ? closed_rate_limited : closed_other);
    if (first_closed.empty()) first_closed = text.substr(0, 200);
  } else if (text.starts_with("[\"NOTICE\"")) {
    ++notices;
  }
}

void Received::add(const Received& other) {
  events += other.events;
  eose += other.eose;
  closed_rate_limited += other.closed_rate_limited;
  closed_other += other.closed_other;
  notices += other.notices;
  bytes += other.bytes;
  if (first_closed.empty()) first_closed = other.first_closed;
}

std::string Received::json_fields() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"events\":%zu,\"bytes\":%zu,\"eose\":%zu,\"closed_rate_limited\":%zu,"
                "\"closed_other\":%zu,\"notices\":%zu,\"first_closed\":",
                events, bytes, eose, closed_rate_limited, closed_other, notices);
  return buf + json_string(first_closed);
}

std::unique_ptr<websocket::Client> connect_or_die(const std::string& url) {
  Result<std::unique_ptr<websocket::Client>> client = websocket::Client::connect(url);
  if (!client) bench::die("connect " + url + ": " + client.error().message());
  return std::move(client).value();
}

void announce_attacking() {
  std::printf("attacking\n");
  std::fflush(stdout);
}

}  // namespace relaycore::isolation

int main(int argc, char** argv) {
  using namespace relaycore::isolation;
  std::signal(SIGPIPE, SIG_IGN);
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "seed") return run_seed(argc, argv);
  if (command == "probe") return run_probe(argc, argv);
  if (command == "slow") return run_slow(argc, argv);
  if (command == "flood") return run_flood(argc, argv);
  if (command == "heavy") return run_heavy(argc, argv);
  if (command == "readback") return run_readback(argc, argv);
  std::fputs(kUsage, command == "--help" || command == "-h" ? stdout : stderr);
  return command == "--help" || command == "-h" ? 0 : 2;
}
