// The server's writer threads, driven directly: the backlog of fan-out queued on writable
// sockets holds the queueing thread once it passes its bound, and lets it go when written.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "websocket/writer_pool.hpp"

namespace relaycore::websocket::detail {
namespace {

// Spins (yielding) until `done` holds; false after about 10 s.
template <typename F>
bool eventually(F done) {
  for (int i = 0; i < 1000000; ++i) {
    if (done()) return true;
    std::this_thread::yield();
  }
  return done();
}

}  // namespace

TEST_CASE("writer pool: a backlog under its bound never holds the queueing thread") {
  WriterPool pool(1);
  pool.add_backlog(WriterPool::kMaxBacklog);
  pool.pace();  // returns at once: at the bound is not over it
  CHECK(pool.pacing_waiters() == 0);
  pool.release_backlog(WriterPool::kMaxBacklog);
}

TEST_CASE("writer pool: a backlog over its bound holds the queueing thread until written") {
  WriterPool pool(1);
  pool.add_backlog(WriterPool::kMaxBacklog + 1);
  std::atomic<bool> returned{false};
  std::thread producer([&] {
    pool.pace();
    returned = true;
  });
  REQUIRE(eventually([&] { return pool.pacing_waiters() == 1; }));
  CHECK_FALSE(returned.load());
  // Written down to the bound: the producer goes on.
  pool.release_backlog(1);
  producer.join();
  CHECK(returned.load());
  CHECK(pool.pacing_waiters() == 0);
  pool.release_backlog(WriterPool::kMaxBacklog);
}

TEST_CASE("writer pool: stopping lets a held thread go") {
  WriterPool pool(1);
  pool.add_backlog(WriterPool::kMaxBacklog * 2);
  std::thread producer([&] { pool.pace(); });
  REQUIRE(eventually([&] { return pool.pacing_waiters() == 1; }));
  pool.join();
  producer.join();
  CHECK(pool.pacing_waiters() == 0);
}

}  // namespace relaycore::websocket::detail
