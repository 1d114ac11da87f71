// Rows altered on disk. The SQLite storage loads its own rows without re-serialising them or
// checking their ids or signatures again, and still never serves a row under another event's
// id: a row whose JSON does not parse, or names another id than the row's, is skipped and
// logged, and the read goes on. A row whose JSON is a valid but not canonical form of its event
// is served in the canonical form.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "../conformance/conformance_support.hpp"
#include "../conformance/temp_dir.hpp"
#include "relay_test_util.hpp"
#include "sqlite_raw_db.hpp"

namespace relaycore {
namespace {

using conformance::event;
using conformance::query;
using conformance::query_ids;
using conformance::TempDir;
using conformance::with_authors;
using conformance::with_ids;
using test::RawDb;

// A SQLite storage in `dir` whose reads all go to SQLite (no event cache unless asked for), with
// its log kept.
struct Opened {
  std::shared_ptr<test::CapturingLogger> log = std::make_shared<test::CapturingLogger>();
  std::shared_ptr<Storage> storage;

  explicit Opened(const TempDir& dir, std::uint32_t cache_entries = 0) {
    SqliteOptions options;
    options.event_cache_entries = cache_entries;
    options.logger = log;
    storage = test::open_at(dir.file("events.db"), options);
  }
};

// Replaces the stored JSON of `e` with `json`, as something outside relaycore could.
void set_json(RawDb& db, const EventPtr& e, const std::string& json) {
  db.run("UPDATE events SET json = ?1 WHERE id = ?2",
         {std::string_view(json), static_cast<const Bytes32*>(&e->id())});
}

std::string replaced(std::string_view text, std::string_view from, std::string_view to) {
  std::string out(text);
  const std::size_t at = out.find(from);
  REQUIRE(at != std::string::npos);
  out.replace(at, from.size(), to);
  return out;
}

}  // namespace

TEST_CASE("sqlite: a row whose JSON is unreadable is skipped and logged, not served",
          "[storage][sqlite]") {
  TempDir dir;
  Opened s(dir);
  EventPtr a = event(test::alice(), 10, "original");
  EventPtr b = event(test::alice(), 20, "second");
  conformance::write(*s.storage, {a, b});
  RawDb db(dir.file("events.db"));
  set_json(db, a, std::string(a->json().substr(0, a->json().size() / 2)));

  CHECK(query_ids(*s.storage, with_ids({a})).empty());
  // The read goes on past the row: the author's other event still comes.
  CHECK(query_ids(*s.storage, with_authors({test::alice().pubkey()})) ==
        std::vector<EventId>{b->id()});
  auto lines = s.log->lines_with("storage: skipped the event stored at seq");
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.front().level == LogLevel::kError);
  CHECK(lines.front().text.find("unreadable") != std::string::npos);
}

TEST_CASE("sqlite: a row holding another event's JSON is never served as that event",
          "[storage][sqlite]") {
  TempDir dir;
  EventPtr a = event(test::alice(), 10, "first");
  EventPtr b = event(test::alice(), 20, "second");
  RawDb db(dir.file("events.db"));

  SECTION("without the cache: skipped and logged") {
    Opened s(dir);
    conformance::write(*s.storage, {a, b});
    // A valid, signed event, but not the one the row's id names.
    set_json(db, a, std::string(b->json()));
    CHECK(query_ids(*s.storage, with_ids({a})).empty());
    CHECK(query_ids(*s.storage, with_authors({test::alice().pubkey()})) ==
          std::vector<EventId>{b->id()});
    CHECK_FALSE(s.log->lines_with("another id than its row").empty());
  }
  SECTION("with the cache: the row is found by its id column, so its cached event is served") {
    Opened s(dir, 100);
    conformance::write(*s.storage, {a, b});
    set_json(db, a, std::string(b->json()));
    std::vector<StoredEvent> all = query(*s.storage, with_authors({test::alice().pubkey()}));
    REQUIRE(all.size() == 2);
    CHECK(all[0].event->id() == b->id());
    CHECK(all[1].event->id() == a->id());
    CHECK(all[1].event->json() == a->json());
  }
}

TEST_CASE("sqlite: a row whose JSON names another id is skipped", "[storage][sqlite]") {
  TempDir dir;
  Opened s(dir);
  EventPtr a = event(test::alice(), 10, "first");
  EventPtr b = event(test::alice(), 20, "second");
  conformance::write(*s.storage, {a, b});
  RawDb db(dir.file("events.db"));
  // The JSON claims b's id with a's content and signature.
  set_json(db, a, replaced(a->json(), a->id_hex(), b->id_hex()));
  CHECK(query_ids(*s.storage, with_ids({a, b})) == std::vector<EventId>{b->id()});
  CHECK_FALSE(s.log->lines_with("storage: skipped the event stored at seq").empty());
}

TEST_CASE("sqlite: a row in another valid form of its event is served in the canonical form",
          "[storage][sqlite]") {
  TempDir dir;
  Opened s(dir);
  // A control character, which the canonical form escapes as \u001f and this text as \u001F.
  EventPtr a = event(test::alice(), 10, std::string("unit\x1fseparator"));
  conformance::write(*s.storage, {a});
  RawDb db(dir.file("events.db"));

  // The canonical form ends ,"sig":"<128 hex>"}; here the signature comes first, after a space.
  const std::string_view json = a->json();
  const std::size_t tail = std::string_view(",\"sig\":\"\"}").size() + 128;
  const std::string reordered = "{ \"sig\": \"" + std::string(a->sig_hex()) + "\", " +
                                std::string(json.substr(1, json.size() - 1 - tail)) + "}";
  set_json(db, a, replaced(reordered, "\\u001f", "\\u001F"));

  std::vector<StoredEvent> found = query(*s.storage, with_ids({a}));
  REQUIRE(found.size() == 1);
  CHECK(found[0].event->json() == a->json());
  CHECK(found[0].event->verify().is_ok());
  CHECK(s.log->lines_with("skipped").empty());
}

TEST_CASE("sqlite: a relay at log level warn still logs a row it skipped", "[storage][sqlite]") {
  TempDir dir;
  auto log = std::make_shared<test::CapturingLogger>();
  EventPtr a = event(test::alice(), 10, "original");
  {
    Options o;
    o.sqlite.path = dir.file("relay.db");
    o.sqlite.event_cache_entries = 0;
    o.logger = log;
    o.log_level = LogLevel::kWarn;
    o.verify_threads = 1;
    auto relay = Relay::open(std::move(o)).value();
    REQUIRE(relay->submit(a).accepted);
    {
      RawDb db(dir.file("relay.db"));
      set_json(db, a, std::string(a->json().substr(0, a->json().size() / 2)));
    }
    std::vector<EventPtr> got;
    REQUIRE(relay
                ->query({with_ids({a})},
                        [&](const EventPtr& e) {
                          got.push_back(e);
                          return true;
                        })
                .is_ok());
    CHECK(got.empty());
  }
  CHECK_FALSE(log->lines_with("storage: skipped the event stored at seq").empty());
  // Lines under the relay's level stay out of its log.
  for (const auto& line : log->lines_with("")) CHECK(line.level >= LogLevel::kWarn);
}

// Broken by a removal that takes the tag keys from whatever JSON the row holds: a row holding
// another event's JSON would delete that event's tag rows and keep its own.
TEST_CASE("sqlite: removing an altered row deletes its own tag rows, not another event's",
          "[storage][sqlite]") {
  TempDir dir;
  Opened s(dir);
  EventPtr a = event(test::alice(), 10, "a", {{"t", "of-a"}});
  EventPtr b = event(test::alice(), 20, "b", {{"t", "of-b"}});
  EventPtr c = event(test::alice(), 30, "c", {{"t", "of-c"}});
  conformance::write(*s.storage, {a, b, c});
  RawDb db(dir.file("events.db"));
  set_json(db, a, std::string(b->json()));
  set_json(db, c, std::string(c->json().substr(0, 20)));
  REQUIRE(s.storage->erase(std::vector<EventId>{a->id(), c->id()}).is_ok());
  CHECK(query_ids(*s.storage, conformance::with_tag('t', {"of-b"})) ==
        std::vector<EventId>{b->id()});
  CHECK(db.text("SELECT COUNT(*) FROM tags") == "1");
}

}  // namespace relaycore
