// SubscriptionIndex: finds the live subscriptions an event matches at a cost that follows the
// matches, not the number of subscriptions. Each filter is filed under its most selective
// field (ids, then authors, then one tag condition, then kinds, then one word of a NIP-50
// search); only filters with none of these are scanned for every event, and within each list
// only those whose since is not after the event's created_at.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pipeline/subscription.hpp"
#include "relaycore/event.hpp"
#include "util/string_map.hpp"

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
  // `since` is the filter's since (INT64_MIN when it has none). Every list is sorted by it, so
  // a lookup stops at the first filter that starts after the event: subscriptions opened
  // "since now" cost nothing for older events, however many are open.
  struct Entry {
    Subscription* sub;
    const Filter* filter;
    std::int64_t since;
  };
  struct Bytes32Hash {
    std::size_t operator()(const Bytes32& b) const noexcept;
  };
  using EntryList = std::vector<Entry>;

  // A Bloom filter over the keys filed in by_id_, by_author_ and by_tag_. Most of an event's
  // id, author and tag values match no subscription; testing two bits of this 128 KiB array
  // spares a probe of a large hash table, whose cache misses would make the dispatch cost grow
  // with the number of subscriptions. Removal leaves bits set (the filter only errs towards a
  // probe), so it is rebuilt once removals outnumber the keys.
  class KeyFilter {
   public:
    void add(std::uint64_t h) noexcept;
    bool may_contain(std::uint64_t h) const noexcept;
    void clear() noexcept;

   private:
    static constexpr std::size_t kBits = std::size_t{1} << 20;
    std::vector<std::uint64_t> words_ = std::vector<std::uint64_t>(kBits / 64);
  };

  // Calls f(list, key hash) for every list `filter` is filed in (hash 0 for the kind and scan
  // lists, which the key filter does not cover).
  template <typename F>
  void for_each_list(const Filter& filter, bool create, F&& f);
  void rebuild_key_filter();
  void consider(const EntryList& list, const Event& event, std::uint64_t seq,
                std::vector<std::shared_ptr<Subscription>>& out);

  mutable std::mutex mu_;
  std::uint64_t committed_seq_ = 0;
  std::uint64_t serial_ = 0;
  std::unordered_map<std::uint64_t, std::shared_ptr<Subscription>> subs_;
  std::unordered_map<Bytes32, EntryList, Bytes32Hash> by_id_;
  std::unordered_map<Bytes32, EntryList, Bytes32Hash> by_author_;
  // Looked up by the event's tag values as string_views, with no key built per lookup.
  using TagMap = StringMap<EntryList>;
  // One map of tag values per single-letter tag name, indexed by the name's byte.
  std::array<TagMap, 256> by_tag_;
  std::unordered_map<std::uint16_t, EntryList> by_kind_;
  // Search filters with no other indexed field, under the longest word of their search (every
  // word must occur, so any one finds them; a long word is likely a rare one). A search with no
  // words matches nothing and is filed nowhere.
  TagMap by_word_;
  EntryList scan_;
  KeyFilter key_filter_;
  std::size_t keys_filed_ = 0, keys_removed_ = 0;
};

}  // namespace relaycore::pipeline
