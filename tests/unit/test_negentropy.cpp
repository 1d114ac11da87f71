// Negentropy reconciliation on two in-memory sets: the wire pieces, and whole syncs that must
// end with each side knowing exactly which ids only it has.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>

#include "crypto/sha256.hpp"
#include "negentropy/negentropy_codec.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/negentropy.hpp"

using namespace relaycore;

namespace {

std::string varint(std::uint64_t v) {
  std::string out;
  negentropy::append_varint(out, v);
  return out;
}

std::string hex(std::string_view bytes) {
  std::string out(bytes.size() * 2, '\0');
  hex_encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), out.data());
  return out;
}

NegentropyItem item(std::mt19937_64& rng, std::uint64_t created_at) {
  NegentropyItem it;
  it.created_at = created_at;
  for (auto& b : it.id) b = static_cast<std::uint8_t>(rng());
  return it;
}

struct SyncResult {
  std::set<EventId> have;
  std::set<EventId> need;
  int rounds = 0;
  std::size_t largest_message = 0;
  std::size_t bytes = 0;
};

// Runs a whole sync: `client` initiates, `server` responds, until the client is done.
SyncResult sync(const std::vector<NegentropyItem>& client,
                const std::vector<NegentropyItem>& server,
                NegentropyOptions options = NegentropyOptions()) {
  Negentropy c(make_negentropy_set(client), options);
  Negentropy s(make_negentropy_set(server), options);
  SyncResult r;
  std::string msg = c.initiate();
  std::vector<EventId> have, need;
  while (!msg.empty()) {
    REQUIRE(r.rounds++ < 100);
    r.largest_message = std::max(r.largest_message, msg.size());
    r.bytes += msg.size();
    Result<std::string> reply = s.respond(msg);
    REQUIRE(reply.is_ok());
    r.largest_message = std::max(r.largest_message, reply->size());
    r.bytes += reply->size();
    Result<std::string> next = c.reconcile(*reply, have, need);
    REQUIRE(next.is_ok());
    msg = std::move(next).value();
  }
  r.have.insert(have.begin(), have.end());
  r.need.insert(need.begin(), need.end());
  // Each id is reported once.
  CHECK(r.have.size() == have.size());
  CHECK(r.need.size() == need.size());
  return r;
}

// Two sets sharing `shared` records, with `only_a` and `only_b` records of their own.
struct Pair {
  std::vector<NegentropyItem> a, b;
  std::set<EventId> a_only, b_only;
};

Pair make_pair(std::size_t shared, std::size_t only_a, std::size_t only_b, std::uint64_t timestamps,
               std::uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  Pair p;
  for (std::size_t i = 0; i < shared; ++i) {
    NegentropyItem it = item(rng, 1'600'000'000 + rng() % timestamps);
    p.a.push_back(it);
    p.b.push_back(it);
  }
  for (std::size_t i = 0; i < only_a; ++i) {
    NegentropyItem it = item(rng, 1'600'000'000 + rng() % timestamps);
    p.a.push_back(it);
    p.a_only.insert(it.id);
  }
  for (std::size_t i = 0; i < only_b; ++i) {
    NegentropyItem it = item(rng, 1'600'000'000 + rng() % timestamps);
    p.b.push_back(it);
    p.b_only.insert(it.id);
  }
  std::shuffle(p.a.begin(), p.a.end(), rng);
  return p;
}

}  // namespace

TEST_CASE("Negentropy varints are base 128, most significant digit first", "[negentropy]") {
  CHECK(hex(varint(0)) == "00");
  CHECK(hex(varint(127)) == "7f");
  CHECK(hex(varint(128)) == "8100");
  CHECK(hex(varint(16383)) == "ff7f");
  CHECK(hex(varint(16384)) == "818000");
  for (std::uint64_t v :
       {std::uint64_t{0}, std::uint64_t{300}, std::uint64_t{1} << 35, UINT64_MAX}) {
    std::string enc = varint(v);
    negentropy::Reader in(enc);
    std::uint64_t back = 1;
    REQUIRE(in.varint(back).is_ok());
    CHECK(back == v);
    CHECK(in.empty());
  }
  std::string cut = "\x81";
  negentropy::Reader short_in(cut);
  std::uint64_t v = 0;
  CHECK(short_in.varint(v).message().starts_with("invalid:"));
  std::string huge(11, '\xff');
  huge.push_back('\x01');
  negentropy::Reader huge_in(huge);
  CHECK(huge_in.varint(v).message().starts_with("invalid:"));
}

TEST_CASE("Negentropy fingerprints are SHA-256 of the id sum mod 2^256 and the count",
          "[negentropy]") {
  // 0xff..ff + 1 wraps to 0: the fingerprint is that of a zero sum, with count 2.
  EventId all_ones;
  all_ones.fill(0xff);
  EventId one{};
  one[0] = 1;  // little-endian 1
  negentropy::Accumulator acc;
  acc.add(all_ones);
  acc.add(one);
  std::string input(32, '\0');
  input.push_back('\x02');
  const crypto::Digest expected = crypto::sha256(input);
  const negentropy::Fingerprint fp = acc.fingerprint(2);
  CHECK(std::equal(fp.begin(), fp.end(), expected.begin()));

  // A carry crosses every limb: 0x00..00ff..ff (low 31 bytes set) + 1 at byte 0.
  EventId low{};
  std::fill(low.begin(), low.begin() + 31, 0xff);
  negentropy::Accumulator carry;
  carry.add(low);
  carry.add(one);
  std::string sum(32, '\0');
  sum[31] = 1;
  sum.push_back('\x02');
  const crypto::Digest carried = crypto::sha256(sum);
  const negentropy::Fingerprint fp2 = carry.fingerprint(2);
  CHECK(std::equal(fp2.begin(), fp2.end(), carried.begin()));
}

TEST_CASE("Negentropy: two sets that differ in known ways converge", "[negentropy]") {
  SECTION("identical sets end in one round with nothing to exchange") {
    Pair p = make_pair(5000, 0, 0, 100000);
    SyncResult r = sync(p.a, p.b);
    CHECK(r.have.empty());
    CHECK(r.need.empty());
    CHECK(r.rounds == 1);
  }
  SECTION("scattered differences both ways") {
    Pair p = make_pair(20000, 37, 53, 1000000);
    SyncResult r = sync(p.a, p.b);
    CHECK(r.have == p.a_only);
    CHECK(r.need == p.b_only);
  }
  SECTION("an empty side") {
    Pair p = make_pair(0, 0, 3000, 1000000);
    SyncResult r = sync(p.a, p.b);
    CHECK(r.have.empty());
    CHECK(r.need == p.b_only);
    Pair q = make_pair(0, 3000, 0, 1000000);
    SyncResult r2 = sync(q.a, q.b);
    CHECK(r2.have == q.a_only);
    CHECK(r2.need.empty());
  }
  SECTION("every record at one timestamp: bounds split on id prefixes") {
    Pair p = make_pair(4000, 20, 20, 1);
    SyncResult r = sync(p.a, p.b);
    CHECK(r.have == p.a_only);
    CHECK(r.need == p.b_only);
  }
  SECTION("16 buckets and id lists under 32, as nostr-tools splits") {
    Pair p = make_pair(10000, 25, 25, 1000000, 11);
    NegentropyOptions o;
    o.buckets = 16;
    o.id_list_below = 32;
    SyncResult r = sync(p.a, p.b, o);
    CHECK(r.have == p.a_only);
    CHECK(r.need == p.b_only);
  }
}

TEST_CASE("Negentropy messages stay within the frame size limit", "[negentropy]") {
  // Disjoint halves force long id lists, far more than one frame holds.
  Pair p = make_pair(1000, 3000, 3000, 1000000, 3);
  NegentropyOptions o;
  o.frame_size_limit = 4096;
  SyncResult r = sync(p.a, p.b, o);
  CHECK(r.have == p.a_only);
  CHECK(r.need == p.b_only);
  CHECK(r.largest_message <= 4096);
  CHECK(r.rounds > 20);  // 6000 ids of 32 bytes cannot cross in fewer 4 KiB frames

  NegentropyOptions unlimited;
  unlimited.frame_size_limit = 0;
  SyncResult big = sync(p.a, p.b, unlimited);
  CHECK(big.have == p.a_only);
  CHECK(big.largest_message > 4096);
}

TEST_CASE("Negentropy refuses malformed messages", "[negentropy]") {
  std::mt19937_64 rng(1);
  std::vector<NegentropyItem> items;
  for (int i = 0; i < 100; ++i) items.push_back(item(rng, 1000 + static_cast<std::uint64_t>(i)));
  Negentropy server(make_negentropy_set(items));
  auto refused = [&](const std::string& msg) {
    Result<std::string> r = server.respond(msg);
    return !r.is_ok() && r.error().message().starts_with("invalid:");
  };
  const std::string v = "\x61";
  CHECK(refused(""));
  CHECK(refused(std::string("\x05", 1)));              // not a version byte
  CHECK(refused(v + std::string("\x00", 1)));          // bound cut short
  CHECK(refused(v + std::string("\x00\x00\x07", 3)));  // unknown mode
  CHECK(refused(v + std::string("\x00\x21", 2) + std::string(33, 'a') + "\x00"));  // 33-byte prefix
  CHECK(refused(v + std::string("\x00\x00\x01", 3) + "short"));  // fingerprint cut short
  CHECK(refused(v + std::string("\x00\x00\x02\x05", 4) + std::string(64, 'x')));  // 5 ids, 2 sent
  // Second bound below the first: same timestamp, lower id prefix.
  CHECK(refused(v + std::string("\x03\x01\x10\x00", 4) + std::string("\x01\x01\x05\x00", 4)));
  // A timestamp past infinity.
  CHECK(refused(v + std::string("\x00\x00\x00", 3) + std::string("\x02\x00\x00", 3)));

  // Another protocol version is answered with ours, as the protocol asks.
  Result<std::string> downgrade = server.respond(std::string("\x62", 1));
  REQUIRE(downgrade.is_ok());
  CHECK(*downgrade == v);

  // Well-formed: a skip of everything gets an empty reply.
  Result<std::string> skip = server.respond(v + std::string("\x00\x00\x00", 3));
  REQUIRE(skip.is_ok());
  CHECK(*skip == v);
}
