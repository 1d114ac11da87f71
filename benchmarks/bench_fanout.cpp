// relaycore-bench-fanout: post-commit dispatch cost per event with 100 and with
// 10,000 live subscriptions that do not match the event, plus one that does. It drives the
// relay's own DispatchStage and SubscriptionIndex (private headers, as the unit tests do), so
// the time measured is exactly the fan-out work: index lookup, filter checks, and delivery of
// one EVENT frame to the matching session. The goal: cost at 10,000 <= 1.5x the cost at 100.
//
//   relaycore-bench-fanout [--events N] [--rounds R]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "bench_corpus.hpp"
#include "pipeline/outbox.hpp"
#include "pipeline/stages.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/hex.hpp"

namespace {

using relaycore::EventPtr;
using namespace relaycore::pipeline;

// A transport that takes frames and counts them: send() must not block, and storing frames
// would measure the allocator instead of the dispatch.
class CountingConnection : public relaycore::Connection {
 public:
  void send(relaycore::Frame frame) override {
    bytes.fetch_add(frame.size(), std::memory_order_relaxed);
    frames.fetch_add(1, std::memory_order_relaxed);
  }
  void close(std::string_view) override {}
  std::size_t queued_bytes() const override { return 0; }
  std::atomic<std::size_t> frames{0};
  std::atomic<std::size_t> bytes{0};
};

relaycore::Filter filter(const std::string& json) {
  relaycore::Result<relaycore::Filter> f = relaycore::parse_filter(json);
  if (!f) bench::die("parse_filter(" + json + "): " + f.error().message());
  return std::move(f).value();
}

std::string hex_list(bench::Generator& gen, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != 0) out.push_back(',');
    out.push_back('"');
    out.append(relaycore::to_hex(gen.bytes32()));
    out.push_back('"');
  }
  return out;
}

// The i-th non-matching subscription. The shapes follow what clients keep open on a relay:
//   0 home feed: kinds [1,6] from 1-50 followed authors (not the publisher)
//   1 notifications: #p of the reader's own key, kinds [1,6,7,9735]
//   2 thread: #e of one root note, kinds [1,7]
//   3 profile/metadata crawler: kinds only, [0], [3], [10002] or [30023]
//   4 "everything from now on": since only, later than the event's created_at
//   5 waiting for one event: ids [x]
//   6 DMs: kinds [4] with #p of the reader
// `event_time` is the newest created_at of the dispatched events; since-only subscriptions start
// after it (the events are notes republished an hour or more after they were written).
std::vector<relaycore::Filter> non_matching(std::size_t i, bench::Generator& gen,
                                            std::int64_t event_time) {
  static constexpr const char* kKindsOnly[] = {"[0]", "[3]", "[10002]", "[30023]"};
  switch (i % 7) {
    case 0:
      return {filter(R"({"kinds":[1,6],"authors":[)" + hex_list(gen, 1 + gen.below(50)) + "]}")};
    case 1:
      return {filter(R"({"kinds":[1,6,7,9735],"#p":[)" + hex_list(gen, 1) + "]}")};
    case 2:
      return {filter(R"({"kinds":[1,7],"#e":[)" + hex_list(gen, 1) + "]}")};
    case 3:
      return {filter(std::string(R"({"kinds":)") + kKindsOnly[gen.below(4)] + "}")};
    case 4:
      return {filter(R"({"since":)" +
                     std::to_string(event_time + 1 + static_cast<std::int64_t>(gen.below(3600))) +
                     "}")};
    case 5:
      return {filter(R"({"ids":[)" + hex_list(gen, 1) + "]}")};
    default:
      return {filter(R"({"kinds":[4],"#p":[)" + hex_list(gen, 1) + "]}")};
  }
}

// One relay core with `non_matching_count` idle subscriptions and one live follower of the
// publisher, and the dispatcher that serves them.
struct Setup {
  std::shared_ptr<Core> core;
  std::unique_ptr<DispatchStage> dispatch;
  std::shared_ptr<CountingConnection> follower_conn;
  std::vector<std::shared_ptr<Outbox>> outboxes;
  std::vector<std::shared_ptr<Subscription>> subs;
};

Setup make_setup(std::size_t non_matching_count, const relaycore::Pubkey& publisher,
                 std::int64_t event_time) {
  Setup s;
  s.core = std::make_shared<Core>(relaycore::Options{});
  s.core->storage = relaycore::new_memory_storage();
  s.dispatch = std::make_unique<DispatchStage>(DispatchStage::Deps{
      s.core->log, s.core->stats, s.core->index, s.core->pubsub,
      /*pubsub_shared=*/false, s.core->node_id, s.core->listeners, s.core->dispatch});
  bench::Generator gen(0xfa9 + non_matching_count);
  constexpr std::size_t kSubsPerSession = 20;  // Limits::max_subscriptions
  auto add = [&](std::vector<relaycore::Filter> filters,
                 const std::shared_ptr<relaycore::Connection>& conn) {
    if (s.subs.size() % kSubsPerSession == 0) {
      s.outboxes.push_back(
          std::make_shared<Outbox>(conn, s.core->options.max_outbound_bytes, s.core->log));
    }
    auto sub = std::make_shared<Subscription>(s.core->next_sub_key++,
                                              "sub" + std::to_string(s.subs.size()),
                                              std::move(filters), s.outboxes.back(), 1u << 20);
    s.core->index.add(sub);
    sub->go_live();
    s.subs.push_back(sub);
  };
  auto idle_conn = std::make_shared<CountingConnection>();
  for (std::size_t i = 0; i < non_matching_count; ++i) {
    add(non_matching(i, gen, event_time), idle_conn);
  }
  s.follower_conn = std::make_shared<CountingConnection>();
  s.outboxes.push_back(
      std::make_shared<Outbox>(s.follower_conn, s.core->options.max_outbound_bytes, s.core->log));
  auto follow = std::make_shared<Subscription>(
      s.core->next_sub_key++, "follow",
      std::vector<relaycore::Filter>{
          filter(R"({"kinds":[1,6],"authors":[")" + relaycore::to_hex(publisher) + "\"]}")},
      s.outboxes.back(), 1u << 20);
  s.core->index.add(follow);
  follow->go_live();
  s.subs.push_back(follow);
  return s;
}

// Dispatches every event once, one event per job (the low-latency case: a group commit of
// one), and returns the CPU ns per event on this thread.
double dispatch_ns_per_event(Setup& s, const std::vector<EventPtr>& events, std::uint64_t& seq) {
  const double start = bench::thread_cpu_seconds();
  for (const EventPtr& ev : events) {
    DispatchJob job;
    job.events.push_back(ev);
    job.seqs.push_back(++seq);
    job.local = true;
    job.committed = Clock::now();
    s.dispatch->process(job);
  }
  return (bench::thread_cpu_seconds() - start) * 1e9 / static_cast<double>(events.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t event_count = 2000;
  std::size_t rounds = 15;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--events") {
      event_count = std::stoul(bench::flag_value(argc, argv, i));
    } else if (arg == "--rounds") {
      rounds = std::stoul(bench::flag_value(argc, argv, i));
    } else {
      bench::die("unknown flag " + arg + " (flags: --events N --rounds R)");
    }
  }
  // Every event is a kind-1 note by one publisher, with 2-4 e/p tags, written more than an hour
  // ago; `latest` is the newest created_at among them.
  const std::int64_t first = static_cast<std::int64_t>(std::time(nullptr)) - 3600 -
                             7 * static_cast<std::int64_t>(event_count);
  const std::int64_t latest = first + 7 * static_cast<std::int64_t>(event_count);
  const bench::Corpus corpus =
      bench::build_corpus({"fanout", event_count, 200, 2, 4}, 0xfa2, first);
  std::vector<EventPtr> events;
  for (const EventPtr& ev : corpus.events) {
    if (ev->pubkey() == corpus.events.front()->pubkey()) events.push_back(ev);
  }
  // build_corpus signs with 8 keys in turn; keep one author's events, then repeat them so
  // every round dispatches `event_count` events.
  const relaycore::Pubkey publisher = events.front()->pubkey();
  for (std::size_t i = 0; events.size() < event_count; ++i) events.push_back(events[i]);

  constexpr std::size_t kSmall = 100;
  constexpr std::size_t kLarge = 10000;
  Setup small = make_setup(kSmall, publisher, latest);
  Setup large = make_setup(kLarge, publisher, latest);
  // Rounds alternate between the two set-ups, so a change in machine load hits both alike.
  std::vector<double> small_ns, large_ns;
  std::uint64_t seq_small = 0, seq_large = 0;
  dispatch_ns_per_event(small, events, seq_small);  // warm-up
  dispatch_ns_per_event(large, events, seq_large);
  for (std::size_t r = 0; r < rounds; ++r) {
    small_ns.push_back(dispatch_ns_per_event(small, events, seq_small));
    large_ns.push_back(dispatch_ns_per_event(large, events, seq_large));
  }
  const std::size_t expected = (rounds + 1) * events.size();
  for (Setup* s : {&small, &large}) {
    if (s->follower_conn->frames.load() != expected) {
      bench::die("the matching subscription got " + std::to_string(s->follower_conn->frames) +
                 " events, expected " + std::to_string(expected));
    }
  }
  const double small_med = bench::quantile(small_ns, 0.5);
  const double large_med = bench::quantile(large_ns, 0.5);
  std::printf(
      "dispatch cost per event (median CPU ns over %zu rounds of %zu events, one event per job):\n"
      "  %6zu non-matching + 1 matching: %8.0f ns  (min %.0f, max %.0f)\n"
      "  %6zu non-matching + 1 matching: %8.0f ns  (min %.0f, max %.0f)\n"
      "  ratio: %.2fx (goal <= 1.5x)\n",
      rounds, events.size(), kSmall, small_med, small_ns.front(), small_ns.back(), kLarge,
      large_med, large_ns.front(), large_ns.back(), large_med / small_med);
  bench::print_result("fanout_100_ns", small_med);
  bench::print_result("fanout_10000_ns", large_med);
  bench::print_result("fanout_ratio", large_med / small_med);
  for (Setup* s : {&small, &large}) {
    for (auto& sub : s->subs) s->core->index.remove(sub);
  }
  return 0;
}
