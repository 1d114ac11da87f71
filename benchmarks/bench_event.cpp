// relaycore-bench-event: the per-event front of the ingest pipeline. Times strict
// parsing, the NIP-01 id hash and BIP-340 verification per event, next to raw libsecp256k1
// verification in the same run, then prints how much parsing plus hashing adds on top of the
// verify cost. The goal is at most 10% for typical events.
//
// Every benchmark handles one event per iteration, cycling through a corpus signed before any
// timing starts, so ns/iteration is ns/event and items/s is events/s.
#include <benchmark/benchmark.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bench_corpus.hpp"
#include "relaycore/event.hpp"
#include "relaycore/message.hpp"

namespace {

using relaycore::EventPtr;

using bench::Corpus;
using bench::die;
using bench::mean_json_bytes;

// The context the raw baseline verifies with, created as a plain libsecp256k1 user would
// (secp256k1_context_create with SECP256K1_CONTEXT_NONE) rather than taken from relaycore.
const secp256k1_context* raw_context() {
  static const secp256k1_context* ctx = [] {
    secp256k1_context* c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (c == nullptr) die("secp256k1_context_create failed");
    return c;
  }();
  return ctx;
}

// Walks a corpus one event per iteration, wrapping at the end.
class Cursor {
 public:
  explicit Cursor(std::size_t size) : size_(size) {}
  std::size_t next() {
    const std::size_t at = i_;
    if (++i_ == size_) i_ = 0;
    return at;
  }

 private:
  std::size_t size_;
  std::size_t i_ = 0;
};

void finish(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// parse_event: strict simdjson parse, field checks and the canonical JSON build.
void bm_parse(benchmark::State& state, const Corpus* c) {
  Cursor cur(c->event_json.size());
  for (auto _ : state) {
    relaycore::Result<EventPtr> ev = relaycore::parse_event(c->event_json[cur.next()]);
    if (!ev) {
      state.SkipWithError("parse_event failed");
      break;
    }
    benchmark::DoNotOptimize(ev);
  }
  finish(state);
}

// Event::load_stored on a copy of the JSON, as a storage reads a row: the same parse, the text
// kept as the event's JSON instead of a canonical build, and the id checked.
void bm_load_stored(benchmark::State& state, const Corpus* c) {
  Cursor cur(c->events.size());
  for (auto _ : state) {
    relaycore::Result<EventPtr> ev =
        relaycore::Event::load_stored(std::string(c->events[cur.next()]->json()));
    if (!ev) {
      state.SkipWithError("load_stored failed");
      break;
    }
    benchmark::DoNotOptimize(ev);
  }
  finish(state);
}

// parse_client_message on an ["EVENT", ...] frame: what a session runs on each text frame.
void bm_parse_message(benchmark::State& state, const Corpus* c) {
  Cursor cur(c->frames.size());
  for (auto _ : state) {
    auto msg = relaycore::parse_client_message(c->frames[cur.next()]);
    if (!msg) {
      state.SkipWithError("parse_client_message failed");
      break;
    }
    benchmark::DoNotOptimize(msg);
  }
  finish(state);
}

// compute_id: SHA-256 of the NIP-01 commitment, hashed in place from the canonical JSON.
void bm_compute_id(benchmark::State& state, const Corpus* c) {
  Cursor cur(c->events.size());
  for (auto _ : state) {
    relaycore::EventId id = c->events[cur.next()]->compute_id();
    benchmark::DoNotOptimize(id);
  }
  finish(state);
}

// verify_signature: relaycore's BIP-340 path (x-only pubkey parse plus schnorrsig verify).
void bm_verify_signature(benchmark::State& state, const Corpus* c) {
  Cursor cur(c->events.size());
  for (auto _ : state) {
    relaycore::Status s = c->events[cur.next()]->verify_signature();
    if (!s) {
      state.SkipWithError("verify_signature failed");
      break;
    }
    benchmark::DoNotOptimize(s);
  }
  finish(state);
}

// The baseline: raw libsecp256k1, pubkey parse plus verify, with nothing of relaycore around it.
void bm_raw_schnorr_verify(benchmark::State& state, const Corpus* c) {
  const secp256k1_context* ctx = raw_context();
  Cursor cur(c->ids.size());
  for (auto _ : state) {
    const std::size_t i = cur.next();
    secp256k1_xonly_pubkey key;
    int ok = secp256k1_xonly_pubkey_parse(ctx, &key, c->pubkeys[i].data());
    ok &= secp256k1_schnorrsig_verify(ctx, c->sigs[i].data(), c->ids[i].data(), c->ids[i].size(),
                                      &key);
    if (ok != 1) {
      state.SkipWithError("secp256k1_schnorrsig_verify failed");
      break;
    }
    benchmark::DoNotOptimize(ok);
  }
  finish(state);
}

// Raw verify with the pubkeys parsed before timing, to show what the pubkey parse costs.
void bm_raw_schnorr_verify_preparsed(benchmark::State& state, const Corpus* c) {
  const secp256k1_context* ctx = raw_context();
  std::vector<secp256k1_xonly_pubkey> keys(c->pubkeys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (secp256k1_xonly_pubkey_parse(ctx, &keys[i], c->pubkeys[i].data()) != 1) {
      state.SkipWithError("secp256k1_xonly_pubkey_parse failed");
      return;
    }
  }
  Cursor cur(c->ids.size());
  for (auto _ : state) {
    const std::size_t i = cur.next();
    int ok = secp256k1_schnorrsig_verify(ctx, c->sigs[i].data(), c->ids[i].data(), c->ids[i].size(),
                                         &keys[i]);
    if (ok != 1) {
      state.SkipWithError("secp256k1_schnorrsig_verify failed");
      break;
    }
    benchmark::DoNotOptimize(ok);
  }
  finish(state);
}

// The whole per-event front: parse the frame, recompute the id, check the signature.
void bm_full_ingest_check(benchmark::State& state, const Corpus* c) {
  Cursor cur(c->frames.size());
  for (auto _ : state) {
    auto msg = relaycore::parse_client_message(c->frames[cur.next()]);
    if (!msg) {
      state.SkipWithError("parse_client_message failed");
      break;
    }
    const auto* event_msg = std::get_if<relaycore::EventMessage>(&msg.value());
    if (event_msg == nullptr || !event_msg->event->verify()) {
      state.SkipWithError("verify failed");
      break;
    }
    benchmark::DoNotOptimize(msg);
  }
  finish(state);
}

// Forwards every run to the console reporter and keeps each benchmark's CPU time per event, so
// the summary is computed from the figures of this run rather than from a second timing pass.
// With repetitions the median aggregate is used; otherwise the median of the plain runs.
class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const std::string& name = run.run_name.function_name;
      const double ns =
          run.GetAdjustedCPUTime() / benchmark::GetTimeUnitMultiplier(run.time_unit) * 1e9;
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name == "median" && run.aggregate_unit == benchmark::kTime) {
          medians_[name] = ns;
        }
      } else {
        samples_[name].push_back(ns);
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // CPU ns per event, or a negative value when the benchmark did not run (filtered or failed).
  double ns_per_event(const std::string& name) const {
    if (auto it = medians_.find(name); it != medians_.end()) return it->second;
    auto it = samples_.find(name);
    if (it == samples_.end() || it->second.empty()) return -1;
    std::vector<double> v = it->second;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

  // Benchmarks in the order they ran.
  void remember_order(const std::string& name) { order_.push_back(name); }
  const std::vector<std::string>& order() const { return order_; }

 private:
  std::map<std::string, double> medians_;
  std::map<std::string, std::vector<double>> samples_;
  std::vector<std::string> order_;
};

// Registers one benchmark over a corpus under "<family>/<corpus>".
void add(CapturingReporter& reporter, const std::string& family,
         void (*fn)(benchmark::State&, const Corpus*), const Corpus& c) {
  const std::string name = family + "/" + c.name;
  benchmark::RegisterBenchmark(name.c_str(), fn, &c)->Unit(benchmark::kNanosecond);
  reporter.remember_order(name);
}

// Prints "(a + b) / base" as a percentage, or why it cannot be computed.
void print_overhead(const CapturingReporter& r, const std::string& label, const std::string& a,
                    const std::string& b, const std::string& base, const char* goal) {
  const double ta = r.ns_per_event(a);
  const double tb = r.ns_per_event(b);
  const double tbase = r.ns_per_event(base);
  if (ta < 0 || tb < 0 || tbase <= 0) {
    std::printf("%s: not measured (needs %s, %s and %s in the run)\n", label.c_str(), a.c_str(),
                b.c_str(), base.c_str());
    return;
  }
  std::printf("%s: %.1f%% %s  [(%.0f + %.0f) ns / %.0f ns]\n", label.c_str(),
              100.0 * (ta + tb) / tbase, goal, ta, tb, tbase);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  // Typical kind-1 notes, and a heavy variant that stresses the codec and the hash.
  const Corpus typical = bench::build_corpus({"typical", 1000, 200, 2, 4}, 0x7e1a7c0de);
  const Corpus large = bench::build_corpus({"large", 100, 8192, 50, 50}, 0x1a26e);

  auto opts = benchmark::ConsoleReporter::OO_Tabular;
  if (isatty(STDOUT_FILENO) != 0) opts = benchmark::ConsoleReporter::OO_ColorTabular;
  CapturingReporter reporter(opts);

  for (const Corpus* c : {&typical, &large}) {
    add(reporter, "BM_Parse", bm_parse, *c);
    add(reporter, "BM_LoadStored", bm_load_stored, *c);
    add(reporter, "BM_ParseMessage", bm_parse_message, *c);
    add(reporter, "BM_ComputeId", bm_compute_id, *c);
  }
  // Verification cost does not depend on the event's size: the message signed is the 32-byte id.
  add(reporter, "BM_VerifySignature", bm_verify_signature, typical);
  add(reporter, "BM_RawSchnorrVerify", bm_raw_schnorr_verify, typical);
  add(reporter, "BM_RawSchnorrVerifyPreparsed", bm_raw_schnorr_verify_preparsed, typical);
  add(reporter, "BM_FullIngestCheck", bm_full_ingest_check, typical);
  add(reporter, "BM_FullIngestCheck", bm_full_ingest_check, large);

  std::printf(
      "corpus: typical = %zu kind-1 events, %zu-%zu tags, ~%zu B content, %zu B JSON avg;"
      " large = %zu events, %zu tags, ~%zu B content, %zu B JSON avg; 8 signing keys\n",
      typical.events.size(), std::size_t{2}, std::size_t{4}, std::size_t{200},
      mean_json_bytes(typical), large.events.size(), std::size_t{50}, std::size_t{8192},
      mean_json_bytes(large));
  std::fflush(stdout);

  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::printf("\nsummary (median CPU time per event):\n");
  std::printf("  %-40s %12s %14s\n", "benchmark", "ns/event", "events/s");
  for (const std::string& name : reporter.order()) {
    const double ns = reporter.ns_per_event(name);
    if (ns <= 0) continue;
    std::printf("  %-40s %12.0f %14.0f\n", name.c_str(), ns, 1e9 / ns);
  }
  std::printf("\n");
  print_overhead(reporter, "parse+id overhead vs raw verify", "BM_Parse/typical",
                 "BM_ComputeId/typical", "BM_RawSchnorrVerify/typical", "(goal <= 10%)");
  print_overhead(reporter, "  same, parsing the [\"EVENT\",...] frame", "BM_ParseMessage/typical",
                 "BM_ComputeId/typical", "BM_RawSchnorrVerify/typical", "(goal <= 10%)");
  print_overhead(reporter, "  same, against verify with a pre-parsed pubkey (stricter)",
                 "BM_Parse/typical", "BM_ComputeId/typical", "BM_RawSchnorrVerifyPreparsed/typical",
                 "(goal <= 10%)");
  print_overhead(reporter, "  large events (8 KiB content, 50 tags)", "BM_Parse/large",
                 "BM_ComputeId/large", "BM_RawSchnorrVerify/typical",
                 "(informational; the goal is set for typical events)");
  benchmark::Shutdown();
  return 0;
}
