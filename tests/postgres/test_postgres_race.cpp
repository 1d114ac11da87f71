// Two storages on one database stand for two relay nodes. They write competing versions of the
// same replaceable and addressable events at the same moment, round after round; afterwards
// each slot holds exactly one version, the NIP-01 winner (newest, then lowest id), and both
// nodes serve it.
#include <catch2/catch.hpp>

#include <barrier>
#include <string>
#include <thread>
#include <vector>

#include "conformance/conformance_support.hpp"
#include "postgres_test_util.hpp"

namespace relaycore {
namespace {

using conformance::event;

constexpr int kRounds = 25;
constexpr int kVersions = 8;  // per slot and round, half written by each node

// The competing versions of one slot: created_at takes three values, so equal created_at ties
// (decided by the lowest id) happen in every round.
std::vector<EventPtr> versions(int round, std::uint16_t kind, const std::string& d) {
  std::vector<EventPtr> out;
  for (int v = 0; v < kVersions; ++v) {
    std::vector<Tag> tags;
    if (!d.empty()) tags.push_back({"d", d});
    out.push_back(event(test::alice(), 1000 + round * 10 + v % 3,
                        "round " + std::to_string(round) + " version " + std::to_string(v), tags,
                        kind));
  }
  return out;
}

EventPtr winner(const std::vector<EventPtr>& events) {
  EventPtr best = events.front();
  for (const EventPtr& e : events) {
    if (supersedes(e->created_at(), e->id(), best->created_at(), best->id())) best = e;
  }
  return best;
}

Filter slot_filter(std::uint16_t kind, const std::string& d) {
  Filter f = conformance::with_kinds({kind});
  f.authors = std::vector<Pubkey>{test::alice().pubkey()};
  if (!d.empty()) f.tags.push_back(TagCondition{'d', {d}});
  return f;
}

struct Slot {
  std::uint16_t kind;
  std::string d;
  std::vector<EventPtr> events;
};

}  // namespace

TEST_CASE("postgres: two nodes racing on replaceable and addressable slots agree on one winner",
          "[postgres][race]") {
  const PostgresOptions options = postgres_test::fresh_options();
  std::shared_ptr<Storage> nodes[2] = {postgres_test::open_storage(options),
                                       postgres_test::open_storage(options)};
  std::vector<Slot> slots;
  for (int round = 0; round < kRounds; ++round) {
    const auto replaceable = static_cast<std::uint16_t>(10000 + round);
    slots.push_back({replaceable, "", versions(round, replaceable, "")});
    const std::string d = "race-" + std::to_string(round);
    slots.push_back({30000, d, versions(round, 30000, d)});
  }

  // Each round both nodes start together and write their half of both slots' versions, one
  // batch per version, the two nodes going through the versions in opposite directions.
  std::barrier start(2);
  std::vector<std::string> errors[2];
  std::vector<std::vector<WriteResult>> results[2];
  auto run = [&](int node) {
    for (int round = 0; round < kRounds; ++round) {
      start.arrive_and_wait();
      for (int i = 0; i < kVersions; ++i) {
        const int v = node == 0 ? i : kVersions - 1 - i;
        if (v % 2 != node) continue;
        for (int s = 0; s < 2; ++s) {
          std::vector<WriteResult> r;
          Status st =
              nodes[node]->write_batch(std::vector<EventPtr>{slots[round * 2 + s].events[v]}, r);
          if (!st) errors[node].push_back(st.message());
          results[node].push_back(std::move(r));
        }
      }
    }
  };
  std::thread a(run, 0);
  std::thread b(run, 1);
  a.join();
  b.join();
  std::string messages;
  for (const auto& node_errors : errors) {
    for (const std::string& e : node_errors) messages += e + "\n";
  }
  INFO(messages);
  CHECK(errors[0].empty());
  CHECK(errors[1].empty());

  for (const Slot& slot : slots) {
    const EventPtr expected = winner(slot.events);
    INFO("kind " << slot.kind << " d '" << slot.d << "'");
    for (auto& node : nodes) {
      CHECK(conformance::query_ids(*node, slot_filter(slot.kind, slot.d)) ==
            conformance::ids_of({expected}));
      CHECK(conformance::count(*node, {slot_filter(slot.kind, slot.d)}) == 1);
    }
  }
}

TEST_CASE("postgres: batches naming the same slots in opposite orders do not deadlock",
          "[postgres][race]") {
  const PostgresOptions options = postgres_test::fresh_options();
  std::shared_ptr<Storage> nodes[2] = {postgres_test::open_storage(options),
                                       postgres_test::open_storage(options)};
  constexpr int kSlots = 12;
  constexpr int kRepeats = 10;
  // Node 0 writes slots 0..11, node 1 writes 11..0, each batch a newer version of every slot.
  std::barrier start(2);
  int failures[2] = {0, 0};
  std::vector<EventPtr> newest;
  auto batch_of = [&](int node, int repeat) {
    std::vector<EventPtr> batch;
    for (int i = 0; i < kSlots; ++i) {
      const int s = node == 0 ? i : kSlots - 1 - i;
      batch.push_back(event(test::bob(), 5000 + repeat * 2 + node, "slot " + std::to_string(s), {},
                            static_cast<std::uint16_t>(10000 + s)));
    }
    return batch;
  };
  std::vector<std::vector<EventPtr>> batches[2];
  for (int node = 0; node < 2; ++node) {
    for (int r = 0; r < kRepeats; ++r) batches[node].push_back(batch_of(node, r));
  }
  auto run = [&](int node) {
    for (int r = 0; r < kRepeats; ++r) {
      start.arrive_and_wait();
      std::vector<WriteResult> results;
      if (!nodes[node]->write_batch(batches[node][r], results)) ++failures[node];
    }
  };
  std::thread a(run, 0);
  std::thread b(run, 1);
  a.join();
  b.join();
  CHECK(failures[0] == 0);
  CHECK(failures[1] == 0);
  // The last batch of node 1 is the newest version of every slot.
  for (int s = 0; s < kSlots; ++s) {
    Filter f = conformance::with_kinds({static_cast<std::uint16_t>(10000 + s)});
    const EventPtr expected = batches[1][kRepeats - 1][static_cast<std::size_t>(kSlots - 1 - s)];
    CHECK(conformance::query_ids(*nodes[0], f) == conformance::ids_of({expected}));
  }
}

}  // namespace relaycore
