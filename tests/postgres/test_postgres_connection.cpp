// The PostgreSQL storage when its server goes away: every call answers "error:" (never a crash,
// never a stored outcome for an event that was not committed), and once the server is back the
// same storage reconnects by itself and carries on. Each test has a server of its own, since it
// stops it.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "conformance/conformance_support.hpp"
#include "postgres_test_util.hpp"
#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"

namespace relaycore {
namespace {

using conformance::event;
using namespace std::chrono_literals;

// Short backoff, so a test sees reconnection quickly.
PostgresOptions options_for(test_servers::PostgresServer& pg) {
  auto db = pg.create_database();
  if (!db) FAIL(pg.error());
  PostgresOptions options;
  options.conninfo = pg.conninfo(*db);
  options.pool_size = 2;
  options.connect_timeout_s = 2;
  options.reconnect_min_ms = 20;
  options.reconnect_max_ms = 200;
  return options;
}

void start(test_servers::PostgresServer& pg) {
  if (!pg.start()) FAIL("cannot start PostgreSQL: " << pg.error());
}

bool is_error(const Status& s) {
  return s.code() == StatusCode::kError && s.message().rfind("error: ", 0) == 0;
}

// Every read and write fails with "error:" and reports nothing as stored.
void expect_errors_everywhere(Storage& s, const EventPtr& e) {
  std::vector<WriteResult> results;
  Status st = s.write_batch(std::vector<EventPtr>{e}, results);
  INFO(st.message());
  CHECK(is_error(st));
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == WriteOutcome::kRejected);
  CHECK(is_error(results[0].status));
  CHECK(results[0].seq == 0);
  CHECK(is_error(s.query(Filter(), QueryRequest(), [](const StoredEvent&) { return true; })));
  auto n = s.count({Filter()}, QueryRequest());
  CHECK((!n && is_error(n.error())));
  auto found = s.contains(e->id());
  CHECK((!found.is_ok() && is_error(found.error())));
  auto seq = s.max_seq();
  CHECK((!seq && is_error(seq.error())));
  auto purged = s.purge_expired(1);
  CHECK((!purged && is_error(purged.error())));
}

// Retries a write until the storage has reconnected, on its own backoff timer (at most 200 ms
// between attempts).
WriteResult write_when_back(Storage& s, const EventPtr& e) {
  std::vector<WriteResult> results;
  Status st;
  if (test::poll_until(
          [&] { return (st = s.write_batch(std::vector<EventPtr>{e}, results)).is_ok(); }, 20s)) {
    return results.at(0);
  }
  FAIL("the storage did not reconnect: " << st.message());
  return {};
}

}  // namespace

TEST_CASE("postgres: a stopped server gives error answers, and the storage reconnects",
          "[postgres][connection]") {
  test_servers::PostgresServer pg;
  start(pg);
  auto s = postgres_test::open_storage(options_for(pg));
  EventPtr before = event(test::alice(), 100, "before");
  CHECK(conformance::write_one(*s, before).outcome == WriteOutcome::kStored);

  pg.stop();
  EventPtr during = event(test::alice(), 101, "during");
  expect_errors_everywhere(*s, during);
  expect_errors_everywhere(*s, during);  // and again, now inside the backoff

  start(pg);
  EventPtr after = event(test::alice(), 102, "after");
  CHECK(write_when_back(*s, after).outcome == WriteOutcome::kStored);
  CHECK(conformance::query_ids(*s, Filter()) == conformance::ids_of({after, before}));
  CHECK_FALSE(conformance::contains(*s, during));  // the failed write left nothing behind
  CHECK(conformance::write_one(*s, during).outcome == WriteOutcome::kStored);
}

TEST_CASE("postgres: a crashed server loses no committed event and the storage recovers",
          "[postgres][connection]") {
  test_servers::PostgresServer pg;
  start(pg);
  auto s = postgres_test::open_storage(options_for(pg));
  std::vector<EventPtr> committed;
  for (int i = 0; i < 20; ++i) committed.push_back(event(test::bob(), 200 + i, std::to_string(i)));
  conformance::write(*s, committed);

  pg.kill();
  expect_errors_everywhere(*s, event(test::bob(), 300, "lost"));
  start(pg);
  write_when_back(*s, event(test::bob(), 301, "back"));
  for (const EventPtr& e : committed) CHECK(conformance::contains(*s, e));
  CHECK(conformance::count(*s, {Filter()}) == committed.size() + 1);
}

TEST_CASE("postgres: writes racing a server stop never report an event stored that is not",
          "[postgres][connection]") {
  test_servers::PostgresServer pg;
  start(pg);
  auto s = postgres_test::open_storage(options_for(pg));
  // A writer keeps committing batches of 5 while the server stops under it and comes back. The
  // test moves on when the writer reports what each phase is for, not after a set time.
  std::mutex mu;
  std::condition_variable progress;
  int ok_batches = 0;
  int failed_batches = 0;
  int inconsistent = 0;
  std::vector<EventPtr> reported_stored;
  bool done = false;
  auto wait_for_writer = [&](const std::function<bool()>& reached) {
    std::unique_lock lock(mu);
    return progress.wait_for(lock, 20s, reached);
  };
  std::thread writer([&] {
    for (int batch = 0;; ++batch) {
      std::vector<EventPtr> events;
      for (int i = 0; i < 5; ++i) {
        events.push_back(event(test::bob(), 1000 + batch, std::to_string(batch * 5 + i)));
      }
      std::vector<WriteResult> results;
      const bool ok = s->write_batch(events, results).is_ok();
      {
        std::lock_guard lock(mu);
        (ok ? ok_batches : failed_batches) += 1;
        for (std::size_t i = 0; i < results.size(); ++i) {
          const bool stored = results[i].outcome == WriteOutcome::kStored;
          if (stored != ok || (!ok && !is_error(results[i].status))) ++inconsistent;
          if (stored) reported_stored.push_back(events[i]);
        }
        if (done) return;
      }
      progress.notify_all();
      std::this_thread::sleep_for(2ms);  // a steady writer, not a flood
    }
  });
  // Up, down (the server stops under the writer), and up again.
  CHECK(wait_for_writer([&] { return ok_batches >= 3; }));
  pg.stop();
  CHECK(wait_for_writer([&] { return failed_batches >= 3; }));
  start(pg);
  int ok_before_restart = 0;
  {
    std::lock_guard lock(mu);
    ok_before_restart = ok_batches;
  }
  CHECK(wait_for_writer([&] { return ok_batches >= ok_before_restart + 3; }));
  {
    std::lock_guard lock(mu);
    done = true;
  }
  writer.join();
  write_when_back(*s, event(test::bob(), 1, "after"));
  CHECK(failed_batches > 0);
  CHECK(inconsistent == 0);
  REQUIRE_FALSE(reported_stored.empty());
  int missing = 0;
  for (const EventPtr& e : reported_stored) missing += conformance::contains(*s, e) ? 0 : 1;
  CHECK(missing == 0);
}

TEST_CASE("postgres: opening against an unreachable server fails with error", "[postgres]") {
  test_servers::PostgresServer pg;
  start(pg);
  PostgresOptions options = options_for(pg);
  pg.stop();
  auto opened = new_postgres_storage(options);
  REQUIRE_FALSE(opened);
  CHECK(is_error(opened.error()));
}

TEST_CASE("postgres: a relay on a stopped server answers OK false with error", "[postgres]") {
  test_servers::PostgresServer pg;
  start(pg);
  Options o;
  o.storage = postgres_test::open_storage(options_for(pg));
  auto relay = Relay::open(std::move(o)).value();
  CHECK(relay->submit(test::signed_event(test::alice(), 1, test::now(), "up")).accepted);

  pg.stop();
  OkResult down = relay->submit(test::signed_event(test::alice(), 1, test::now(), "down"));
  CHECK_FALSE(down.accepted);
  CHECK(down.message.rfind("error: ", 0) == 0);

  start(pg);
  // The storage reconnects on its own backoff timer: resubmit until it is back.
  EventPtr back = test::signed_event(test::alice(), 1, test::now(), "back");
  CHECK(test::poll_until([&] { return relay->submit(back).accepted; }, 20s));
  CHECK(relay->shutdown().message() == "");
}

}  // namespace relaycore
