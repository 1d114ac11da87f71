// The built-in RateLimiter. Each bucket is one number, its theoretical arrival time (the
// generic cell rate algorithm): a request at `now` is allowed while the bucket's time is no more
// than the burst's worth of intervals ahead of `now`, and moves it one interval on. A bucket whose
// time has fallen behind `now` is full, and can be forgotten without loss.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>

#include "pipeline/client_address.hpp"
#include "pipeline/snapshot.hpp"
#include "relaycore/rate_limit.hpp"

namespace relaycore {

ConnectionSlot::ConnectionSlot(ConnectionSlot&& other) noexcept
    : release_(std::exchange(other.release_, nullptr)) {}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
  if (this != &other) {
    release();
    release_ = std::exchange(other.release_, nullptr);
  }
  return *this;
}

void ConnectionSlot::release() noexcept {
  if (std::function<void()> release = std::exchange(release_, nullptr)) release();
}

namespace pipeline {
namespace {

constexpr std::size_t kVerbs = 3;
// Shards of the bucket table, each with its own lock, so threads charging different clients
// seldom meet.
constexpr std::size_t kShards = 16;
// Intervals and tolerances are clamped here, so that adding them to a time cannot overflow.
constexpr double kMaxNanos = 1e18;

// The bucket index of a limited verb, or -1.
int verb_index(Verb verb) noexcept {
  switch (verb) {
    case Verb::kEvent:
      return 0;
    case Verb::kReq:
      return 1;
    case Verb::kCount:
      return 2;
    default:
      return -1;
  }
}

constexpr std::string_view kVerbNames[kVerbs] = {"EVENT", "REQ", "COUNT"};

// A RateLimit in the algorithm's terms.
struct BucketParams {
  std::int64_t interval_ns = 0;   // time one token takes to refill; 0 = unlimited
  std::int64_t tolerance_ns = 0;  // (burst - 1) intervals: how far ahead a bucket may run

  bool limited() const noexcept { return interval_ns > 0; }
  std::int64_t capacity_ns() const noexcept { return tolerance_ns + interval_ns; }
};

BucketParams make_params(const RateLimit& limit) {
  if (!limit.limited()) return {};
  const double burst = limit.burst > 0 ? limit.burst : std::max(1.0, std::ceil(limit.per_second));
  const double interval = std::clamp(1e9 / limit.per_second, 1.0, kMaxNanos);
  BucketParams p;
  p.interval_ns = static_cast<std::int64_t>(interval);
  p.tolerance_ns = static_cast<std::int64_t>(std::min((burst - 1) * interval, kMaxNanos));
  return p;
}

// Buckets are keyed by what they limit, behind a tag byte: an address or a pubkey.
enum Scope : std::uint8_t { kIp = 0, kPubkey = 1 };
constexpr char kIpTag = 'i';
constexpr char kNameTag = 'n';
constexpr char kPubkeyTag = 'p';

// A bucket key: a tag byte and up to 32 bytes, zero padded, in a fixed buffer, so that neither
// a lookup nor a new key allocates.
class Key {
 public:
  // An IP, or a hash of an address that is not one (a host's own label, such as "stdio").
  static Key address(const std::optional<IpAddress>& ip, std::string_view address) {
    if (ip) return Key(kIpTag, ip->bytes.data(), ip->bytes.size());
    const std::size_t h = std::hash<std::string_view>()(address);
    return Key(kNameTag, &h, sizeof h);
  }
  static Key pubkey(const Pubkey& pk) { return Key(kPubkeyTag, pk.data(), pk.size()); }

  bool operator==(const Key& other) const noexcept { return bytes_ == other.bytes_; }

  // The key as 64-bit words, for hashing.
  std::uint64_t word(std::size_t i) const noexcept {
    std::uint64_t w;
    std::memcpy(&w, bytes_.data() + i * sizeof w, sizeof w);
    return w;
  }
  static constexpr std::size_t kWords = 5;

 private:
  Key(char tag, const void* data, std::size_t size) {
    bytes_[0] = static_cast<std::uint8_t>(tag);
    std::memcpy(bytes_.data() + 1, data, size);
  }
  std::array<std::uint8_t, kWords * 8> bytes_{};
  static_assert(1 + sizeof(Pubkey) <= kWords * 8);
};

// A multiply-xorshift hash with a seed drawn once per process, so that clients cannot work out
// keys that collide in the tables. Not noexcept: libstdc++ then keeps each node's hash, instead
// of hashing nodes again to find where a bucket's chain ends and on every erase.
struct KeyHash {
  std::size_t operator()(const Key& key) const {
    static const std::uint64_t seed =
        (std::uint64_t{std::random_device()()} << 32) | std::random_device()();
    std::uint64_t h = seed;
    for (std::size_t i = 0; i < Key::kWords; ++i) {
      h = (h ^ key.word(i)) * 0x9e3779b97f4a7c15ULL;
      h ^= h >> 29;
    }
    return static_cast<std::size_t>(h ^ (h >> 32));
  }
};

template <typename V>
using KeyMap = std::unordered_map<Key, V, KeyHash>;

struct Buckets {
  std::array<std::int64_t, kVerbs> tat{};
  Scope scope = kIp;
};

struct alignas(64) Shard {
  std::mutex mu;
  KeyMap<Buckets> buckets;
};

// Open connections per address. Only addresses with a connection open have an entry, so the
// table is as large as the transport's set of sockets.
struct ConnectionTable {
  std::mutex mu;
  KeyMap<std::uint32_t> open;

  void release(const Key& key) {
    std::lock_guard lock(mu);
    auto it = open.find(key);
    if (it != open.end() && --it->second == 0) open.erase(it);
  }
};

// What reconfigure() replaces: the rates, the exemptions, the trusted proxies and the
// connection cap. A request reads one snapshot, so it never sees half of a change.
struct LimiterConfig {
  std::vector<IpPrefix> exempt_ips;
  std::vector<IpPrefix> trusted_proxies;
  std::vector<Pubkey> exempt_pubkeys;  // sorted
  std::function<bool(const ClientInfo&)> exempt;
  std::uint32_t max_connections = 0;
  BucketParams params[2][kVerbs];
};

Status check_rate(const RateLimit& limit, std::string_view what) {
  if (std::isfinite(limit.per_second) && limit.per_second >= 0) return Status::ok();
  return Status::invalid(std::string(what) + " rate must be a finite number of at least 0");
}

// The limiter's view of `limits`, or "invalid: ..." for a bad rate, exempt address or proxy.
Result<std::unique_ptr<const LimiterConfig>> make_config(const RateLimits& limits) {
  auto config = std::make_unique<LimiterConfig>();
  const std::pair<const VerbLimits*, std::string_view> scopes[] = {
      {&limits.per_ip, "per-address"}, {&limits.per_pubkey, "per-pubkey"}};
  for (std::size_t s = 0; s < 2; ++s) {
    const VerbLimits& verbs = *scopes[s].first;
    const std::pair<const RateLimit*, std::string_view> rates[] = {
        {&verbs.event, "EVENT"}, {&verbs.req, "REQ"}, {&verbs.count, "COUNT"}};
    for (std::size_t v = 0; v < kVerbs; ++v) {
      Status ok = check_rate(*rates[v].first,
                             std::string(scopes[s].second) + " " + std::string(rates[v].second));
      if (!ok) return ok;
      config->params[s][v] = make_params(*rates[v].first);
    }
  }
  const std::pair<const std::vector<std::string>*, std::vector<IpPrefix>*> lists[] = {
      {&limits.exempt_ips, &config->exempt_ips},
      {&limits.trusted_proxies, &config->trusted_proxies}};
  for (const auto& [texts, prefixes] : lists) {
    for (const std::string& text : *texts) {
      Result<IpPrefix> prefix = parse_ip_prefix(text);
      if (!prefix) return prefix.error();
      prefixes->push_back(*prefix);
    }
  }
  config->exempt_pubkeys = limits.exempt_pubkeys;
  std::sort(config->exempt_pubkeys.begin(), config->exempt_pubkeys.end());
  config->exempt = limits.exempt;
  config->max_connections = limits.max_connections_per_ip;
  return std::unique_ptr<const LimiterConfig>(std::move(config));
}

class BuiltinRateLimiter final : public RateLimiter {
 public:
  BuiltinRateLimiter(const RateLimits& limits, RateLimitClock clock,
                     std::unique_ptr<const LimiterConfig> config)
      : clock_(std::move(clock)),
        ipv6_prefix_bits_(limits.ipv6_prefix_bits),
        shard_capacity_(std::max<std::size_t>(1, limits.max_tracked_keys / kShards)),
        config_(std::move(config)) {}

  Status reconfigure(const RateLimits& limits) override {
    Result<std::unique_ptr<const LimiterConfig>> config = make_config(limits);
    if (!config) return config.error();
    config_.set(std::move(config).value());
    return Status::ok();
  }

  Status allow(Verb verb, const ClientInfo& client) override {
    const int v = verb_index(verb);
    if (v < 0) return Status::ok();
    const LimiterConfig& c = config_.get();
    const bool by_ip = c.params[kIp][v].limited() && !client.remote_address.empty();
    const bool by_pubkey = c.params[kPubkey][v].limited() && !client.authenticated.empty();
    if (!by_ip && !by_pubkey) return Status::ok();
    const std::optional<IpAddress> ip =
        client_ip(c.trusted_proxies, client.remote_address, client.forwarded_for);
    if (exempt(c, client, ip)) return Status::ok();

    const std::int64_t now = now_ns();
    const Key ip_key = address_key(ip, client.remote_address);
    if (by_ip && !take(c, ip_key, kIp, v, now)) return refuse(v, "from this address");
    if (by_pubkey) {
      for (std::size_t i = 0; i < client.authenticated.size(); ++i) {
        if (take(c, Key::pubkey(client.authenticated[i]), kPubkey, v, now)) continue;
        // Refused: give back what this request took, so a refusal costs no tokens.
        if (by_ip) give_back(c, ip_key, kIp, v);
        for (std::size_t j = 0; j < i; ++j) {
          give_back(c, Key::pubkey(client.authenticated[j]), kPubkey, v);
        }
        return refuse(v, "for this pubkey");
      }
    }
    return Status::ok();
  }

  Result<ConnectionSlot> open_connection(const ClientInfo& client) override {
    const LimiterConfig& config = config_.get();
    if (config.max_connections == 0 || client.remote_address.empty()) return ConnectionSlot();
    const std::optional<IpAddress> ip =
        client_ip(config.trusted_proxies, client.remote_address, client.forwarded_for);
    if (exempt(config, client, ip)) return ConnectionSlot();
    const Key key = address_key(ip, client.remote_address);
    {
      std::lock_guard lock(connections_->mu);
      auto it = connections_->open.find(key);
      if (it == connections_->open.end()) it = connections_->open.emplace(key, 0).first;
      if (it->second >= config.max_connections) {
        refused_connections_.fetch_add(1, std::memory_order_relaxed);
        return Status::rate_limited("too many connections from this address");
      }
      ++it->second;
    }
    return ConnectionSlot([table = connections_, key] { table->release(key); });
  }

  RateLimitStats stats() const override {
    RateLimitStats s;
    s.refused_event = refused_[0].load(std::memory_order_relaxed);
    s.refused_req = refused_[1].load(std::memory_order_relaxed);
    s.refused_count = refused_[2].load(std::memory_order_relaxed);
    s.refused_connections = refused_connections_.load(std::memory_order_relaxed);
    for (Shard& shard : shards_) {
      std::lock_guard lock(shard.mu);
      s.tracked_keys += shard.buckets.size();
    }
    return s;
  }

 private:
  std::int64_t now_ns() const {
    const auto t = clock_ ? clock_() : std::chrono::steady_clock::now();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

  // The key of a client's address, with IPv6 addresses cut to the prefix that names a client.
  // (Exemptions are checked against the whole address.)
  Key address_key(std::optional<IpAddress> ip, std::string_view address) const noexcept {
    if (ip && !ip->v4) ip->mask(ipv6_prefix_bits_);
    return Key::address(ip, address);
  }

  static bool exempt(const LimiterConfig& c, const ClientInfo& client,
                     const std::optional<IpAddress>& ip) {
    for (const Pubkey& pk : client.authenticated) {
      if (std::binary_search(c.exempt_pubkeys.begin(), c.exempt_pubkeys.end(), pk)) return true;
    }
    if (ip && contains(c.exempt_ips, *ip)) return true;
    if (!c.exempt) return false;
    try {
      return c.exempt(client);
    } catch (...) {
      return false;
    }
  }

  Shard& shard_for(const Key& key) const noexcept { return shards_[KeyHash()(key) % kShards]; }

  // Takes one token from the bucket, creating it full if the key is new.
  bool take(const LimiterConfig& c, const Key& key, Scope scope, int v, std::int64_t now) {
    const BucketParams& p = c.params[scope][v];
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.buckets.find(key);
    if (it == shard.buckets.end()) {
      if (shard.buckets.size() >= shard_capacity_) make_room(c, shard, now);
      Buckets fresh;
      fresh.tat.fill(now);
      fresh.scope = scope;
      it = shard.buckets.emplace(key, fresh).first;
    }
    std::int64_t& tat = it->second.tat[static_cast<std::size_t>(v)];
    // Threads read the clock before they lock, so `now` may be a little behind a bucket that
    // another thread just refilled; max() keeps the bucket from moving back.
    const std::int64_t start = std::max(tat, now);
    if (start - now > p.tolerance_ns) return false;
    tat = start + p.interval_ns;
    return true;
  }

  void give_back(const LimiterConfig& c, const Key& key, Scope scope, int v) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.buckets.find(key);
    if (it != shard.buckets.end()) {
      it->second.tat[static_cast<std::size_t>(v)] -= c.params[scope][v].interval_ns;
    }
  }

  // How full a key's buckets are, from 0 to 1: the mean over its limited verbs of the fraction
  // of the burst each holds.
  static double fullness(const LimiterConfig& c, const Buckets& b, std::int64_t now) noexcept {
    double sum = 0;
    int verbs = 0;
    for (std::size_t v = 0; v < kVerbs; ++v) {
      const BucketParams& p = c.params[b.scope][v];
      if (!p.limited()) continue;
      const double owed = static_cast<double>(std::max<std::int64_t>(0, b.tat[v] - now));
      sum += 1.0 - owed / static_cast<double>(p.capacity_ns());
      ++verbs;
    }
    return verbs > 0 ? sum / verbs : 1.0;
  }

  static bool full(const LimiterConfig& c, const Buckets& b, std::int64_t now) noexcept {
    for (std::size_t v = 0; v < kVerbs; ++v) {
      if (c.params[b.scope][v].limited() && b.tat[v] > now) return false;
    }
    return true;
  }

  // Frees a quarter of a full shard, so that the sweep runs once per that many new keys: full
  // buckets first (nothing is lost), then the fullest (the least is lost).
  void make_room(const LimiterConfig& c, Shard& shard, std::int64_t now) {
    std::erase_if(shard.buckets, [&](const auto& kv) { return full(c, kv.second, now); });
    const std::size_t target = shard_capacity_ - std::max<std::size_t>(1, shard_capacity_ / 4);
    if (shard.buckets.size() <= target) return;
    std::vector<std::pair<double, KeyMap<Buckets>::iterator>> ranked;
    ranked.reserve(shard.buckets.size());
    for (auto it = shard.buckets.begin(); it != shard.buckets.end(); ++it) {
      ranked.emplace_back(fullness(c, it->second, now), it);
    }
    const std::size_t evict = shard.buckets.size() - target;
    std::nth_element(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(evict),
                     ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < evict; ++i) shard.buckets.erase(ranked[i].second);
  }

  Status refuse(int v, std::string_view whose) {
    refused_[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
    return Status::rate_limited("slow down: too many " +
                                std::string(kVerbNames[static_cast<std::size_t>(v)]) + "s " +
                                std::string(whose));
  }

  const RateLimitClock clock_;
  const std::uint32_t ipv6_prefix_bits_;
  const std::size_t shard_capacity_;
  Snapshot<LimiterConfig> config_;

  mutable std::array<Shard, kShards> shards_;
  const std::shared_ptr<ConnectionTable> connections_ = std::make_shared<ConnectionTable>();
  std::array<std::atomic<std::uint64_t>, kVerbs> refused_{};
  std::atomic<std::uint64_t> refused_connections_{0};
};

}  // namespace
}  // namespace pipeline

Result<std::shared_ptr<RateLimiter>> new_rate_limiter(const RateLimits& limits,
                                                      RateLimitClock clock) {
  if (limits.ipv6_prefix_bits < 1 || limits.ipv6_prefix_bits > 128) {
    return Status::invalid("ipv6_prefix_bits must be 1 to 128");
  }
  Result<std::unique_ptr<const pipeline::LimiterConfig>> config = pipeline::make_config(limits);
  if (!config) return config.error();
  return std::shared_ptr<RateLimiter>(std::make_shared<pipeline::BuiltinRateLimiter>(
      limits, std::move(clock), std::move(config).value()));
}

Result<double> parse_rate(std::string_view text) {
  if (text == "off") return 0.0;
  const std::size_t slash = text.find('/');
  const std::string_view number = text.substr(0, slash);
  const std::string_view unit =
      slash == std::string_view::npos ? std::string_view("s") : text.substr(slash + 1);
  double seconds = 0;
  if (unit == "s") {
    seconds = 1;
  } else if (unit == "m") {
    seconds = 60;
  } else if (unit == "h") {
    seconds = 3600;
  }
  double n = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
  if (seconds == 0 || number.empty() || ec != std::errc() || end != number.data() + number.size() ||
      !std::isfinite(n) || n < 0) {
    return Status::invalid("\"" + std::string(text) +
                           "\" is not a rate (N/s, N/m, N/h, N per second, or off)");
  }
  return n / seconds;
}

}  // namespace relaycore
