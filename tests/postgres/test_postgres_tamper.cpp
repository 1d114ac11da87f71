// Rows altered on the server. The PostgreSQL storage loads its own rows without re-serialising
// them or checking their ids or signatures again, and still never serves a row under another
// event's id: a row whose JSON does not parse, or names another id than the row's, is skipped
// and logged, and the read goes on; removing it still takes its own tag rows, and no others.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "../unit/relay_test_util.hpp"
#include "conformance/conformance_support.hpp"
#include "postgres/pg_connection.hpp"
#include "postgres_test_util.hpp"

namespace relaycore {
namespace {

using conformance::event;
using conformance::query_ids;
using conformance::with_authors;
using conformance::with_ids;
using postgres::PgConnection;
using postgres::PgParams;

// Replaces the stored JSON of `e` with `json`, as something outside relaycore could.
void set_json(PgConnection& conn, const EventPtr& e, const std::string& json) {
  PgParams params;
  params.add_text(json).add_bytes(e->id());
  auto res = conn.exec("UPDATE events SET json = $1 WHERE id = $2", params, /*prepare=*/false);
  if (!res) FAIL(res.error().message());
}

}  // namespace

TEST_CASE("postgres: a row altered on the server is skipped and logged, not served", "[postgres]") {
  PostgresOptions options = postgres_test::fresh_options();
  auto log = std::make_shared<test::CapturingLogger>();
  options.logger = log;
  auto storage = postgres_test::open_storage(options);
  EventPtr a = event(test::alice(), 10, "original");
  EventPtr b = event(test::alice(), 20, "second");
  EventPtr c = event(test::alice(), 30, "third");
  conformance::write(*storage, {a, b, c});
  PgConnection conn(options);
  // Unreadable JSON, and a row holding another valid event's JSON.
  set_json(conn, a, std::string(a->json().substr(0, a->json().size() / 2)));
  set_json(conn, b, std::string(c->json()));

  CHECK(query_ids(*storage, with_ids({a, b})).empty());
  CHECK(query_ids(*storage, with_authors({test::alice().pubkey()})) ==
        std::vector<EventId>{c->id()});
  auto lines = log->lines_with("storage: skipped the event stored at seq");
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.front().level == LogLevel::kError);
}

// Broken by a removal that fails on JSON the server cannot read, or that takes the tag keys
// from whatever JSON the row holds: a row holding another event's JSON would delete that
// event's tag rows and keep its own.
TEST_CASE("postgres: removing an altered row deletes its own tag rows, not another event's",
          "[postgres]") {
  const PostgresOptions options = postgres_test::fresh_options();
  auto storage = postgres_test::open_storage(options);
  EventPtr a = event(test::alice(), 10, "a", {{"t", "of-a"}});
  EventPtr b = event(test::alice(), 20, "b", {{"t", "of-b"}});
  EventPtr c = event(test::alice(), 30, "c", {{"t", "of-c"}});
  conformance::write(*storage, {a, b, c});
  PgConnection conn(options);
  set_json(conn, a, std::string(b->json()));
  set_json(conn, c, std::string(c->json().substr(0, 20)));
  auto erased = storage->erase(std::vector<EventId>{a->id(), c->id()});
  REQUIRE(erased.is_ok());
  CHECK(conformance::removed_ids(*erased) == conformance::ids_of({a, c}));
  CHECK(query_ids(*storage, conformance::with_tag('t', {"of-b"})) == std::vector<EventId>{b->id()});
  CHECK(postgres_test::count(conn, "SELECT COUNT(*) FROM tags") == 1);
}

}  // namespace relaycore
