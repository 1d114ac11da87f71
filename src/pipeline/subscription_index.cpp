#include "pipeline/subscription_index.hpp"

#include <algorithm>
#include <cstring>

namespace relaycore::pipeline {
namespace {

std::string tag_key(char name, std::string_view value) {
  std::string key;
  key.reserve(1 + value.size());
  key.push_back(name);
  key.append(value);
  return key;
}

}  // namespace

std::size_t SubscriptionIndex::Bytes32Hash::operator()(const Bytes32& b) const noexcept {
  // Ids and pubkeys are hashes or curve points: any 8 bytes are uniformly distributed.
  std::size_t h;
  std::memcpy(&h, b.data(), sizeof(h));
  return h;
}

template <typename F>
void SubscriptionIndex::for_each_list(const Filter& filter, bool create, F&& f) {
  auto visit = [&](auto& map, const auto& key) {
    if (create) {
      f(map[key]);
    } else if (auto it = map.find(key); it != map.end()) {
      f(it->second);
      if (it->second.empty()) map.erase(it);
    }
  };
  if (filter.ids) {
    for (const EventId& id : *filter.ids) visit(by_id_, id);
  } else if (filter.authors) {
    for (const Pubkey& pk : *filter.authors) visit(by_author_, pk);
  } else if (!filter.tags.empty()) {
    const TagCondition& cond = filter.tags.front();
    for (const std::string& v : cond.values) visit(by_tag_, tag_key(cond.name, v));
  } else if (filter.kinds) {
    for (std::uint16_t k : *filter.kinds) visit(by_kind_, k);
  } else {
    f(scan_);
  }
}

std::uint64_t SubscriptionIndex::add(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard lock(mu_);
  sub->live_from = committed_seq_;
  subs_[sub->key] = sub;
  for (const Filter& filter : sub->filters) {
    for_each_list(filter, true, [&](EntryList& list) { list.push_back({sub.get(), &filter}); });
  }
  return committed_seq_;
}

void SubscriptionIndex::remove(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard lock(mu_);
  auto it = subs_.find(sub->key);
  if (it == subs_.end() || it->second != sub) return;
  for (const Filter& filter : sub->filters) {
    for_each_list(filter, false, [&](EntryList& list) {
      list.erase(std::remove_if(list.begin(), list.end(),
                                [&](const Entry& e) { return e.sub == sub.get(); }),
                 list.end());
    });
  }
  subs_.erase(it);
}

void SubscriptionIndex::consider(const EntryList& list, const Event& event, std::uint64_t seq,
                                 std::vector<std::shared_ptr<Subscription>>& out) {
  for (const Entry& e : list) {
    if (e.sub->match_stamp == serial_) continue;
    if (seq != 0 && seq <= e.sub->live_from) continue;
    if (!e.filter->matches(event)) continue;
    e.sub->match_stamp = serial_;
    out.push_back(subs_.at(e.sub->key));
  }
}

void SubscriptionIndex::match(const Event& event, std::uint64_t seq,
                              std::vector<std::shared_ptr<Subscription>>& out) {
  std::lock_guard lock(mu_);
  ++serial_;
  if (subs_.empty()) return;
  if (auto it = by_id_.find(event.id()); it != by_id_.end()) consider(it->second, event, seq, out);
  if (auto it = by_author_.find(event.pubkey()); it != by_author_.end()) {
    consider(it->second, event, seq, out);
  }
  if (!by_tag_.empty()) {
    std::string key;
    for (const Tag& tag : event.tags()) {
      if (tag.size() < 2 || tag[0].size() != 1) continue;
      key.assign(1, tag[0][0]);
      key.append(tag[1]);
      if (auto it = by_tag_.find(key); it != by_tag_.end()) consider(it->second, event, seq, out);
    }
  }
  if (auto it = by_kind_.find(event.kind()); it != by_kind_.end()) {
    consider(it->second, event, seq, out);
  }
  consider(scan_, event, seq, out);
}

void SubscriptionIndex::set_committed(std::uint64_t seq) {
  std::lock_guard lock(mu_);
  if (seq > committed_seq_) committed_seq_ = seq;
}

std::size_t SubscriptionIndex::size() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

}  // namespace relaycore::pipeline
