// Shared input for the benchmark programs: deterministic pre-signed events, the single-thread
// verify rate, and small timing helpers. Every program builds its input with these before any
// timing starts, so no timed loop signs or formats events.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/relay.hpp"

namespace bench {

using relaycore::EventPtr;

// Prints "<program>: <what>" and exits 1; a benchmark of broken input would measure error paths.
[[noreturn]] void die(const std::string& what);

// Shuts the relay down and dies if the drain lost anything (audit records, events for other
// nodes): the run did not do what it reports.
void shutdown_or_die(relaycore::Relay& relay);

// One set of pre-signed events in every form a benchmark needs.
struct Corpus {
  std::string name;
  std::vector<EventPtr> events;
  std::vector<std::string> event_json;  // the event object, as parse_event reads it
  std::vector<std::string> frames;      // ["EVENT",<event>], as a client sends it
  // The raw bytes that libsecp256k1 gets, copied out of the events.
  std::vector<relaycore::Pubkey> pubkeys;
  std::vector<relaycore::Signature> sigs;
  std::vector<relaycore::EventId> ids;
};

// The shape of the events in a corpus.
struct CorpusShape {
  std::string name;
  std::size_t count;
  std::size_t content_bytes;  // approximate
  std::size_t min_tags;
  std::size_t max_tags;
  // When non-zero, event i also carries ["t", "topic<i % topics>"], so that tag filters can pick
  // a known share of the corpus.
  std::size_t topics = 0;
};

// Deterministic input: the same seed gives the same keys, content and tags in every run (the
// signatures differ, since signing uses fresh auxiliary randomness).
class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  relaycore::Bytes32 bytes32();
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }

  // Prose-like text of about `target` bytes, with the occasional newline, quote, accented
  // letter and emoji, so the writer's escaping and the UTF-8 check do real work.
  std::string content(std::size_t target);

  // An "e" tag (sometimes with a relay hint and a NIP-10 marker) or a "p" tag.
  relaycore::Tag tag();

  // `n` valid key pairs.
  std::vector<relaycore::Keypair> keys(std::size_t n);

 private:
  std::mt19937_64 rng_;
};

// The value of the t tag that CorpusShape::topics gives event i: topic_name(i % topics).
std::string topic_name(std::size_t n);

// Signs `shape.count` kind-1 events with 8 keys and checks that each one parses back and
// verifies, so the timed loops measure the success path only. `created_at` starts at `base`.
Corpus build_corpus(const CorpusShape& shape, std::uint64_t seed, std::int64_t base = 1700000000);

// Average size of the event objects, for the summaries.
std::size_t mean_json_bytes(const Corpus& c);

// The single-thread rate of Event::verify() (id recomputation plus BIP-340 signature check,
// what a verify thread does per event), in events/s, measured over about `seconds` of CPU time
// on the calling thread by cycling through `events`.
double verify_rate_per_thread(const std::vector<EventPtr>& events, double seconds);

// CPU time of the calling thread, in seconds.
double thread_cpu_seconds();

// utime + stime, in seconds, from a /proc stat file: /proc/PID/stat for a process,
// /proc/PID/task/TID/stat for a thread. 0 when the file cannot be read.
double stat_cpu_seconds(const std::string& stat_path);

// The q-quantile (0..1) of `samples` (sorted in place); 0 when empty.
double quantile(std::vector<double>& samples, double q);

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The value that follows the flag at argv[i], advancing i; dies when there is none.
std::string flag_value(int argc, char** argv, int& i);

// One machine-readable line, "RESULT <name> <value>", that benchmarks/run_all collects.
void print_result(const std::string& name, double value);

}  // namespace bench
