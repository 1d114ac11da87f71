// SubscriptionIndex: finds the live subscriptions an event matches at a cost that follows the
// matches, not the number of subscriptions. Each filter is filed under its most selective
// field (ids, then authors, then one tag condition, then kinds); only filters with none of
// these are scanned for every event.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipeline/subscription.hpp"
#include "relaycore/event.hpp"

namespace relaycore::pipeline {

class SubscriptionIndex {
 public:
  // Files the subscription and returns the commit sequence S it is live from: every event
  // committed at or before S is history, every later one is delivered live. S is the last
  // commit, not the last dispatch, so a client reads its own acked writes in the history.
  std::uint64_t add(const std::shared_ptr<Subscription>& sub);

  // Removes it if present (by key).
  void remove(const std::shared_ptr<Subscription>& sub);

  // Appends the subscriptions matching `event` to `out`, each once. A stored event (seq > 0)
  // skips subscriptions that went live at or after its commit: their history has it.
  void match(const Event& event, std::uint64_t seq,
             std::vector<std::shared_ptr<Subscription>>& out);

  // Records that everything up to `seq` is committed; the writer calls it before acking.
  void set_committed(std::uint64_t seq);

  std::size_t size() const;

 private:
  struct Entry {
    Subscription* sub;
    const Filter* filter;
  };
  struct Bytes32Hash {
    std::size_t operator()(const Bytes32& b) const noexcept;
  };
  using EntryList = std::vector<Entry>;

  // Calls f(list) for every list `filter` is filed in.
  template <typename F>
  void for_each_list(const Filter& filter, bool create, F&& f);
  void consider(const EntryList& list, const Event& event, std::uint64_t seq,
                std::vector<std::shared_ptr<Subscription>>& out);

  mutable std::mutex mu_;
  std::uint64_t committed_seq_ = 0;
  std::uint64_t serial_ = 0;
  std::unordered_map<std::uint64_t, std::shared_ptr<Subscription>> subs_;
  std::unordered_map<Bytes32, EntryList, Bytes32Hash> by_id_;
  std::unordered_map<Bytes32, EntryList, Bytes32Hash> by_author_;
  std::unordered_map<std::string, EntryList> by_tag_;  // tag name char + value
  std::unordered_map<std::uint16_t, EntryList> by_kind_;
  EntryList scan_;
};

}  // namespace relaycore::pipeline
