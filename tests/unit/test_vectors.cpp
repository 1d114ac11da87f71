// The shared vectors: NIP-01 event ids (canonical serialisation) and the 19 BIP-340 vectors.
#include <simdjson.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "relaycore/event.hpp"
#include "relaycore/hex.hpp"
#include "test_util.hpp"

using namespace relaycore;

namespace {

std::vector<std::uint8_t> hex_bytes(std::string hex) {
  for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<std::uint8_t> out(hex.size() / 2);
  REQUIRE(hex_decode(hex, out.data(), out.size()));
  return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> fixed(const std::vector<std::uint8_t>& v) {
  std::array<std::uint8_t, N> out{};
  REQUIRE(v.size() == N);
  std::copy(v.begin(), v.end(), out.begin());
  return out;
}

struct Bip340Row {
  int index;
  std::string pubkey, message, signature, comment;
  bool expected;
};

std::vector<Bip340Row> bip340_rows() {
  std::string text = test::read_file(RELAYCORE_TEST_DATA "/bip340-test-vectors.csv");
  REQUIRE(!text.empty());
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  std::vector<Bip340Row> rows;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cols;
    std::string col;
    std::istringstream ls(line);
    while (std::getline(ls, col, ',')) cols.push_back(col);
    if (line.back() == ',') cols.emplace_back();
    REQUIRE(cols.size() >= 7);
    rows.push_back({std::stoi(cols[0]), cols[2], cols[4], cols[5], cols.size() > 7 ? cols[7] : "",
                    cols[6] == "TRUE"});
  }
  return rows;
}

}  // namespace

TEST_CASE("NIP-01 id vectors: canonical serialisation and id", "[vectors]") {
  std::string text = test::read_file(RELAYCORE_TEST_DATA "/nip01-event-ids.json");
  REQUIRE(!text.empty());
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(text);
  std::size_t count = 0;
  for (simdjson::dom::element v : doc["vectors"].get_array()) {
    std::string name(v["name"].get_string().value());
    INFO("vector " << name);
    EventFields f;
    REQUIRE(from_hex(v["pubkey"].get_string().value(), f.pubkey));
    f.created_at = v["created_at"].get_int64().value();
    f.kind = static_cast<std::uint16_t>(v["kind"].get_int64().value());
    for (simdjson::dom::element tag : v["tags"].get_array()) {
      Tag t;
      for (simdjson::dom::element s : tag.get_array()) t.emplace_back(s.get_string().value());
      f.tags.push_back(std::move(t));
    }
    f.content = std::string(v["content"].get_string().value());
    Result<EventPtr> ev = Event::create(std::move(f));
    REQUIRE(ev.is_ok());
    CHECK((*ev)->commitment() == v["serialized"].get_string().value());
    CHECK(to_hex((*ev)->compute_id()) == v["id"].get_string().value());
    ++count;
  }
  CHECK(count >= 7);
}

TEST_CASE("BIP-340 vectors through the raw verify function", "[vectors]") {
  std::vector<Bip340Row> rows = bip340_rows();
  REQUIRE(rows.size() == 19);
  int valid = 0;
  for (const Bip340Row& row : rows) {
    INFO("vector " << row.index << " " << row.comment);
    auto pub = fixed<32>(hex_bytes(row.pubkey));
    auto sig = fixed<64>(hex_bytes(row.signature));
    std::vector<std::uint8_t> msg = hex_bytes(row.message);
    CHECK(verify_schnorr(pub, sig, msg.data(), msg.size()) == row.expected);
    valid += row.expected;
  }
  CHECK(valid == 9);
}

TEST_CASE("BIP-340 vectors with 32-byte messages through the event API", "[vectors]") {
  int checked = 0;
  for (const Bip340Row& row : bip340_rows()) {
    std::vector<std::uint8_t> msg = hex_bytes(row.message);
    if (msg.size() != 32) continue;
    INFO("vector " << row.index << " " << row.comment);
    EventFields f;
    f.id = fixed<32>(msg);
    f.pubkey = fixed<32>(hex_bytes(row.pubkey));
    f.sig = fixed<64>(hex_bytes(row.signature));
    EventPtr ev = Event::create(std::move(f)).value();
    Status s = ev->verify_signature();
    CHECK(s.is_ok() == row.expected);
    if (!row.expected) CHECK(s.message() == "invalid: bad signature");
    ++checked;
  }
  CHECK(checked == 15);
}
