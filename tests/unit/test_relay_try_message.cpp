// Session::try_on_message(): what a transport's reader thread may hand the session directly.
// It verifies an EVENT on the calling thread, hands it on without waiting, and declines, having
// changed nothing, whenever handling the frame could wait: a full queue, or a host policy.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "relay_test_util.hpp"
#include "relaycore/message.hpp"
#include "relaycore/relay.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;
using test::now;

namespace {

using test::event_frame;

// The frames that start with `prefix`.
std::size_t count(const test::RecordingConnection& conn, std::string_view prefix) {
  return test::RecordingConnection::count(conn.frames(), prefix);
}

// Records the threads it was called on.
class ThreadRecordingEventPolicy : public EventPolicy {
 public:
  PolicyDecision check(const EventPtr&, const ClientInfo&) override {
    std::lock_guard lock(mu_);
    threads_.push_back(std::this_thread::get_id());
    return PolicyDecision::accept();
  }
  std::vector<std::thread::id> threads() const {
    std::lock_guard lock(mu_);
    return threads_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::thread::id> threads_;
};

class CountingFilterPolicy : public FilterPolicy {
 public:
  PolicyDecision check(const std::vector<Filter>&, const ClientInfo&) override {
    ++calls;
    return PolicyDecision::accept();
  }
  std::atomic<int> calls{0};
};

}  // namespace

// Broken by a try_on_message() that queues the event for the verify threads (the refusal would
// come later, from another thread) or that lets a forged event through.
TEST_CASE("try_on_message verifies an EVENT on the calling thread", "[relay][try]") {
  auto storage = std::make_shared<test::RecordingStorage>(new_memory_storage());
  test::SessionFixture fx([&](Options& o) { o.storage = storage; });
  EventPtr good = test::signed_event(test::alice(), 1, now(), "good");
  EventPtr other = test::signed_event(test::alice(), 1, now(), "other");
  std::string forged(good->json());
  forged.replace(forged.find(good->sig_hex()), 128, other->sig_hex());

  REQUIRE(fx.session->try_on_message("[\"EVENT\"," + forged + "]"));
  // Answered before the call returned: the signature was checked on this thread.
  CHECK(fx.conn->frames() ==
        std::vector<std::string>{ok_message(good->id_hex(), false, "invalid: bad signature")});

  REQUIRE(fx.session->try_on_message(event_frame(good)));
  REQUIRE(fx.conn->wait_frame(ok_message(good->id_hex(), true, "")));
  CHECK(storage->was_written(good->id()));
  CHECK_FALSE(storage->was_written(other->id()));
  CHECK(fx.relay->stats().frames_event == 2);
}

// Broken by a try_on_message() that answers a bad frame differently from on_message(), or that
// declines it (the transport would hand it to another thread for nothing).
TEST_CASE("try_on_message answers bad frames and other verbs itself", "[relay][try]") {
  test::SessionFixture fx;
  CHECK(fx.session->try_on_message("not json"));
  CHECK(fx.session->try_on_message(R"(["REQ","s",{"kinds":[1]}])"));
  REQUIRE(fx.conn->wait_count("[\"EOSE\",\"s\"]", 1));
  CHECK(fx.session->try_on_message(R"(["CLOSE","s"])"));
  const std::vector<std::string> frames = fx.conn->frames();
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].rfind("[\"NOTICE\",\"invalid: ", 0) == 0);
  CHECK(frames[1] == R"(["EOSE","s"])");
}

// Broken by a try_on_message() that waits for room (the calling thread would hang here), that
// takes the frame and drops it, or that counts or answers it before declining.
TEST_CASE("try_on_message declines, having done nothing, while the write queue is full",
          "[relay][try]") {
  auto audit = std::make_shared<test::GatedAudit>();
  audit->set_open(false);
  test::SessionFixture fx([&](Options& o) {
    o.audit = audit;
    o.write_queue_capacity = 1;
  });
  EventPtr first = test::signed_event(test::alice(), 1, now(), "first");
  EventPtr second = test::signed_event(test::alice(), 1, now(), "second");
  EventPtr third = test::signed_event(test::alice(), 1, now(), "third");
  // The writer takes the first and holds it at the shut audit gate; the second fills the queue.
  REQUIRE(fx.session->try_on_message(event_frame(first)));
  REQUIRE(audit->wait_blocked());
  REQUIRE(fx.session->try_on_message(event_frame(second)));

  CHECK_FALSE(fx.session->try_on_message(event_frame(third)));
  CHECK(fx.relay->stats().frames_event == 2);
  CHECK(fx.conn->frames().empty());

  // The transport then hands the declined frame to on_message(), which waits for room.
  std::thread blocking([&] { fx.session->on_message(event_frame(third)); });
  audit->set_open(true);
  blocking.join();
  REQUIRE(fx.conn->wait_count("[\"OK\"", 3));
  CHECK(count(*fx.conn, ok_message(third->id_hex(), true, "")) == 1);
  CHECK(fx.relay->stats().frames_event == 3);
}

// Broken by a try_on_message() that runs the host's event policy, which may block, on the
// transport's thread.
TEST_CASE("try_on_message leaves the event policy to the verify threads", "[relay][try]") {
  auto policy = std::make_shared<ThreadRecordingEventPolicy>();
  test::SessionFixture fx([&](Options& o) { o.event_policy = policy; });
  EventPtr e = test::signed_event(test::alice(), 1, now(), "policed");
  REQUIRE(fx.session->try_on_message(event_frame(e)));
  REQUIRE(fx.conn->wait_frame(ok_message(e->id_hex(), true, "")));
  const std::vector<std::thread::id> threads = policy->threads();
  REQUIRE(threads.size() == 1);
  CHECK(threads[0] != std::this_thread::get_id());
}

// Broken by a try_on_message() that runs the host's filter policy on the transport's thread,
// or that declines EVENTs because one is set.
TEST_CASE("try_on_message declines REQ and COUNT while a filter policy is set", "[relay][try]") {
  auto policy = std::make_shared<CountingFilterPolicy>();
  test::SessionFixture fx([&](Options& o) { o.filter_policy = policy; });
  CHECK_FALSE(fx.session->try_on_message(R"(["REQ","s",{"kinds":[1]}])"));
  CHECK_FALSE(fx.session->try_on_message(R"(["COUNT","c",{"kinds":[1]}])"));
  CHECK(policy->calls.load() == 0);
  CHECK(fx.conn->frames().empty());

  EventPtr e = test::signed_event(test::alice(), 1, now(), "allowed");
  REQUIRE(fx.session->try_on_message(event_frame(e)));
  REQUIRE(fx.conn->wait_frame(ok_message(e->id_hex(), true, "")));

  fx.session->on_message(R"(["REQ","s",{"kinds":[1]}])");
  REQUIRE(fx.conn->wait_count("[\"EOSE\",\"s\"]", 1));
  CHECK(policy->calls.load() == 1);
}
