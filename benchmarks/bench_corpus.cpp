#include "bench_corpus.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <utility>

#include "relaycore/hex.hpp"

namespace bench {

void die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
  std::exit(1);
}

void shutdown_or_die(relaycore::Relay& relay) {
  if (relaycore::Status s = relay.shutdown(); !s) die("shutdown: " + s.message());
}

relaycore::Bytes32 Generator::bytes32() {
  relaycore::Bytes32 out{};
  for (auto& b : out) b = static_cast<std::uint8_t>(rng_());
  return out;
}

std::string Generator::content(std::size_t target) {
  static constexpr std::string_view kWords[] = {"relay",       "nostr",
                                                "event",       "signed",
                                                "the",         "a",
                                                "note",        "zap",
                                                "followed",    "key",
                                                "posted",      "today",
                                                "bitcoin",     "lightning",
                                                "client",      "and",
                                                "of",          "to",
                                                "with",        "café",
                                                "naïve",       "🤙",
                                                "🌱",           "\"quoted\"",
                                                "line\nbreak", "https://example.com/some/path?q=1",
                                                "#hashtag",    "gm"};
  std::string out;
  out.reserve(target + 32);
  while (out.size() < target) {
    if (!out.empty()) out.push_back(' ');
    out.append(kWords[below(std::size(kWords))]);
  }
  return out;
}

relaycore::Tag Generator::tag() {
  switch (below(4)) {
    case 0:
      return {"e", relaycore::to_hex(bytes32())};
    case 1:
      return {"e", relaycore::to_hex(bytes32()), "wss://relay.example.com", "reply"};
    default:
      return {"p", relaycore::to_hex(bytes32())};
  }
}

std::vector<relaycore::Keypair> Generator::keys(std::size_t n) {
  std::vector<relaycore::Keypair> out;
  out.reserve(n);
  while (out.size() < n) {
    relaycore::Result<relaycore::Keypair> k = relaycore::Keypair::from_secret(bytes32());
    if (k) out.push_back(k.value());
  }
  return out;
}

std::string topic_name(std::size_t n) { return "topic" + std::to_string(n); }

Corpus build_corpus(const CorpusShape& shape, std::uint64_t seed, std::int64_t base) {
  Generator gen(seed);
  const std::vector<relaycore::Keypair> keys = gen.keys(8);
  Corpus c;
  c.name = shape.name;
  for (std::size_t i = 0; i < shape.count; ++i) {
    relaycore::EventDraft draft;
    draft.created_at = base + static_cast<std::int64_t>(i) * 7;
    draft.kind = 1;
    const std::size_t ntags = shape.min_tags + gen.below(shape.max_tags - shape.min_tags + 1);
    for (std::size_t t = 0; t < ntags; ++t) draft.tags.push_back(gen.tag());
    if (shape.topics != 0) draft.tags.push_back({"t", topic_name(i % shape.topics)});
    draft.content = gen.content(shape.content_bytes);
    relaycore::Result<EventPtr> signed_event =
        relaycore::sign_event(keys[i % keys.size()], std::move(draft));
    if (!signed_event) die("sign_event failed: " + signed_event.error().message());
    const EventPtr& ev = signed_event.value();

    relaycore::Result<EventPtr> reparsed = relaycore::parse_event(ev->json());
    if (!reparsed) die("parse_event failed: " + reparsed.error().message());
    if (relaycore::Status s = reparsed.value()->verify(); !s) die("verify failed: " + s.message());

    c.events.push_back(ev);
    c.event_json.emplace_back(ev->json());
    c.frames.push_back("[\"EVENT\"," + std::string(ev->json()) + "]");
    c.pubkeys.push_back(ev->pubkey());
    c.sigs.push_back(ev->sig());
    c.ids.push_back(ev->id());
  }
  return c;
}

std::size_t mean_json_bytes(const Corpus& c) {
  std::size_t total = 0;
  for (const std::string& j : c.event_json) total += j.size();
  return c.event_json.empty() ? 0 : total / c.event_json.size();
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double stat_cpu_seconds(const std::string& stat_path) {
  std::ifstream file(stat_path);
  std::string stat;
  std::getline(file, stat);
  const std::size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos || name_end + 2 > stat.size()) return 0;
  // Fields after the ")" that closes the name: state is field 3; utime and stime are 14, 15.
  std::istringstream fields(stat.substr(name_end + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double verify_rate_per_thread(const std::vector<EventPtr>& events, double seconds) {
  if (events.empty()) die("verify_rate_per_thread: no events");
  // CPU time, not wall time: on a shared machine the thread may be descheduled, and the limit
  // is what one verify thread does with a core of its own.
  const double start = thread_cpu_seconds();
  std::size_t done = 0;
  double elapsed = 0;
  while (elapsed < seconds) {
    for (std::size_t i = 0; i < 64; ++i) {
      if (!events[done % events.size()]->verify()) die("verify failed");
      ++done;
    }
    elapsed = thread_cpu_seconds() - start;
  }
  return static_cast<double>(done) / elapsed;
}

double quantile(std::vector<double>& samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto at = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(at, samples.size() - 1)];
}

std::string flag_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) die(std::string("missing value for ") + argv[i]);
  return argv[++i];
}

void print_result(const std::string& name, double value) {
  std::printf("RESULT %s %.4g\n", name.c_str(), value);
  std::fflush(stdout);
}

}  // namespace bench
