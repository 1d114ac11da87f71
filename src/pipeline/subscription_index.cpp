#include "pipeline/subscription_index.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>

#include "protocol/search_text.hpp"

namespace relaycore::pipeline {
namespace {

std::size_t tag_slot(char name) { return static_cast<unsigned char>(name); }

// splitmix64's finaliser: spreads a key's bits over the whole word for the key filter.
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Key hashes for the key filter, salted by where the key is filed. Never 0.
constexpr std::uint64_t kIdSalt = 1, kAuthorSalt = 2, kTagSalt = 3;
std::uint64_t key_hash(const Bytes32& b, std::uint64_t salt) noexcept {
  std::uint64_t h;
  std::memcpy(&h, b.data(), sizeof(h));
  return mix(h + salt) | 1;
}
std::uint64_t key_hash(char name, std::string_view value) noexcept {
  return mix(std::hash<std::string_view>()(value) + kTagSalt + tag_slot(name)) | 1;
}

}  // namespace

std::size_t SubscriptionIndex::Bytes32Hash::operator()(const Bytes32& b) const noexcept {
  // Ids and pubkeys are hashes or curve points: any 8 bytes are uniformly distributed.
  std::size_t h;
  std::memcpy(&h, b.data(), sizeof(h));
  return h;
}

void SubscriptionIndex::KeyFilter::add(std::uint64_t h) noexcept {
  words_[(h % kBits) / 64] |= std::uint64_t{1} << (h % 64);
  const std::uint64_t g = h >> 32;
  words_[(g % kBits) / 64] |= std::uint64_t{1} << (g % 64);
}

bool SubscriptionIndex::KeyFilter::may_contain(std::uint64_t h) const noexcept {
  const std::uint64_t g = h >> 32;
  return (words_[(h % kBits) / 64] >> (h % 64) & 1) != 0 &&
         (words_[(g % kBits) / 64] >> (g % 64) & 1) != 0;
}

void SubscriptionIndex::KeyFilter::clear() noexcept {
  std::fill(words_.begin(), words_.end(), std::uint64_t{0});
}

template <typename F>
void SubscriptionIndex::for_each_list(const Filter& filter, bool create, F&& f) {
  auto visit = [&](auto& map, const auto& key, std::uint64_t hash) {
    if (create) {
      f(map[key], hash);
    } else if (auto it = map.find(key); it != map.end()) {
      f(it->second, hash);
      if (it->second.empty()) map.erase(it);
    }
  };
  if (filter.ids) {
    for (const EventId& id : *filter.ids) visit(by_id_, id, key_hash(id, kIdSalt));
  } else if (filter.authors) {
    for (const Pubkey& pk : *filter.authors) visit(by_author_, pk, key_hash(pk, kAuthorSalt));
  } else if (!filter.tags.empty()) {
    const TagCondition& cond = filter.tags.front();
    for (const std::string& v : cond.values) {
      visit(by_tag_[tag_slot(cond.name)], v, key_hash(cond.name, v));
    }
  } else if (filter.kinds) {
    for (std::uint16_t k : *filter.kinds) visit(by_kind_, k, 0);
  } else if (filter.search) {
    const std::vector<std::string> words = search::query_words(*filter.search);
    auto longest = std::max_element(words.begin(), words.end(), [](const auto& a, const auto& b) {
      return a.size() < b.size();
    });
    if (longest != words.end()) visit(by_word_, *longest, 0);
  } else {
    f(scan_, 0);
  }
}

void SubscriptionIndex::rebuild_key_filter() {
  key_filter_.clear();
  for (const auto& [id, list] : by_id_) key_filter_.add(key_hash(id, kIdSalt));
  for (const auto& [pk, list] : by_author_) key_filter_.add(key_hash(pk, kAuthorSalt));
  for (std::size_t name = 0; name < by_tag_.size(); ++name) {
    for (const auto& [value, list] : by_tag_[name]) {
      key_filter_.add(key_hash(static_cast<char>(name), value));
    }
  }
  keys_removed_ = 0;
}

std::uint64_t SubscriptionIndex::add(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard lock(mu_);
  sub->live_from = committed_seq_;
  subs_[sub->key] = sub;
  for (const Filter& filter : sub->filters) {
    const Entry entry{sub.get(), &filter, filter.since.value_or(INT64_MIN)};
    for_each_list(filter, true, [&](EntryList& list, std::uint64_t hash) {
      if (hash != 0) {
        key_filter_.add(hash);
        ++keys_filed_;
      }
      auto at =
          std::upper_bound(list.begin(), list.end(), entry.since,
                           [](std::int64_t since, const Entry& e) { return since < e.since; });
      list.insert(at, entry);
    });
  }
  return committed_seq_;
}

void SubscriptionIndex::remove(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard lock(mu_);
  auto it = subs_.find(sub->key);
  if (it == subs_.end() || it->second != sub) return;
  for (const Filter& filter : sub->filters) {
    for_each_list(filter, false, [&](EntryList& list, std::uint64_t hash) {
      list.erase(std::remove_if(list.begin(), list.end(),
                                [&](const Entry& e) { return e.sub == sub.get(); }),
                 list.end());
      if (hash != 0) {
        --keys_filed_;
        ++keys_removed_;
      }
    });
  }
  subs_.erase(it);
  if (keys_removed_ > keys_filed_ + 1024) rebuild_key_filter();
}

void SubscriptionIndex::consider(const EntryList& list, const Event& event, std::uint64_t seq,
                                 std::vector<std::shared_ptr<Subscription>>& out) {
  for (const Entry& e : list) {
    if (e.since > event.created_at()) break;  // this one and the rest start later
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
  if (key_filter_.may_contain(key_hash(event.id(), kIdSalt))) {
    if (auto it = by_id_.find(event.id()); it != by_id_.end())
      consider(it->second, event, seq, out);
  }
  if (key_filter_.may_contain(key_hash(event.pubkey(), kAuthorSalt))) {
    if (auto it = by_author_.find(event.pubkey()); it != by_author_.end()) {
      consider(it->second, event, seq, out);
    }
  }
  for (const Tag& tag : event.tags()) {
    if (tag.size() < 2 || tag[0].size() != 1) continue;
    const TagMap& values = by_tag_[tag_slot(tag[0][0])];
    if (values.empty() || !key_filter_.may_contain(key_hash(tag[0][0], tag[1]))) continue;
    if (auto it = values.find(std::string_view(tag[1])); it != values.end()) {
      consider(it->second, event, seq, out);
    }
  }
  if (auto it = by_kind_.find(event.kind()); it != by_kind_.end()) {
    consider(it->second, event, seq, out);
  }
  if (!by_word_.empty()) {
    std::vector<std::string> words = search::words(event.content());
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    for (const std::string& w : words) {
      if (auto it = by_word_.find(std::string_view(w)); it != by_word_.end()) {
        consider(it->second, event, seq, out);
      }
    }
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
