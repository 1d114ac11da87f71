// The in-process API an app uses instead of a loopback socket: typed query and count, live
// subscriptions with callbacks, change listeners, and submit_async.
#include <pthread.h>

#include <catch2/catch.hpp>
#include <future>
#include <set>
#include <thread>

#include "relay_test_util.hpp"
#include "relaycore/relay.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Relay> open_relay(std::function<void(Options&)> tweak = nullptr) {
  Options o;
  o.storage = new_memory_storage();
  o.verify_threads = 1;
  if (tweak) tweak(o);
  return Relay::open(std::move(o)).value();
}

Filter filter(std::string_view json) { return parse_filter(json).value(); }

std::string thread_name() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof(name));
  return name;
}

// Collects what a subscription reports, for a test thread to wait on.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<EventPtr> events;
  std::size_t eose_at = SIZE_MAX;  // events before on_eose
  std::string closed;
  std::set<std::string> threads;

  SubscribeCallbacks callbacks() {
    SubscribeCallbacks cb;
    cb.on_event = [this](const EventPtr& e) {
      std::lock_guard lock(mu);
      events.push_back(e);
      threads.insert(thread_name());
      cv.notify_all();
    };
    cb.on_eose = [this] {
      std::lock_guard lock(mu);
      eose_at = events.size();
      cv.notify_all();
    };
    cb.on_closed = [this](std::string_view reason) {
      std::lock_guard lock(mu);
      closed = std::string(reason);
      cv.notify_all();
    };
    return cb;
  }
  bool wait(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, pred);
  }
  bool has(const EventPtr& e) {
    return std::any_of(events.begin(), events.end(),
                       [&](const EventPtr& x) { return x->id() == e->id(); });
  }
};

}  // namespace

TEST_CASE("query and count apply a REQ's rules in process", "[relay][embedding]") {
  auto relay = open_relay();
  const std::int64_t t = test::now() - 100;
  std::vector<EventPtr> notes;
  for (int i = 0; i < 10; ++i) {
    notes.push_back(test::signed_event(test::alice(), 1, t + i, "note " + std::to_string(i)));
    REQUIRE(relay->submit(notes.back()).accepted);
  }
  EventPtr expiring = test::signed_event(test::alice(), 1, t + 50, "soon gone",
                                         {{"expiration", std::to_string(test::now() + 1)}});
  REQUIRE(relay->submit(expiring).accepted);
  // Alice deletes note 9.
  EventPtr deletion =
      test::signed_event(test::alice(), 5, t + 60, "", {{"e", std::string(notes[9]->id_hex())}});
  REQUIRE(relay->submit(deletion).accepted);

  std::vector<EventPtr> got;
  REQUIRE(relay
              ->query({filter(R"({"kinds":[1],"limit":3})"), filter(R"({"kinds":[1],"limit":2})")},
                      [&](const EventPtr& e) {
                        got.push_back(e);
                        return true;
                      })
              .is_ok());
  // Newest first, the deleted note gone, each event once although both filters match it.
  REQUIRE(got.size() == 3);
  CHECK(got[0]->id() == expiring->id());
  CHECK(got[1]->id() == notes[8]->id());
  CHECK(got[2]->id() == notes[7]->id());

  // The visitor can stop early.
  int seen = 0;
  REQUIRE(relay->query({filter(R"({"kinds":[1]})")}, [&](const EventPtr&) { return ++seen < 2; })
              .is_ok());
  CHECK(seen == 2);

  CHECK(relay->count({filter(R"({"kinds":[1]})")}).value() == 10);
  CHECK(relay->count({filter(R"({"kinds":[1]})"), filter(R"({"kinds":[5]})")}).value() == 11);
}

TEST_CASE("subscribe delivers history, EOSE, then live events on the callback thread",
          "[relay][embedding]") {
  auto relay = open_relay();
  EventPtr old_note = test::signed_event(test::alice(), 1, test::now() - 10, "old");
  REQUIRE(relay->submit(old_note).accepted);
  Collector c;
  auto handle = relay->subscribe({filter(R"({"kinds":[1]})")}, c.callbacks()).value();
  REQUIRE(c.wait([&] { return c.eose_at != SIZE_MAX; }));
  CHECK(c.eose_at == 1);
  EventPtr live = test::signed_event(test::bob(), 1, test::now(), "live");
  EventPtr other_kind = test::signed_event(test::bob(), 7, test::now(), "+");
  REQUIRE(relay->submit(other_kind).accepted);
  REQUIRE(relay->submit(live).accepted);
  REQUIRE(c.wait([&] { return c.events.size() == 2; }));
  std::lock_guard lock(c.mu);
  CHECK(c.events[0]->id() == old_note->id());
  CHECK(c.events[1]->id() == live->id());
  CHECK(c.threads == std::set<std::string>{"rc-callback"});
}

TEST_CASE("subscribe races commits and sees every event exactly once", "[relay][embedding]") {
  auto relay = open_relay();
  constexpr int kEvents = 300;
  std::vector<EventPtr> events;
  for (int i = 0; i < kEvents; ++i) {
    events.push_back(test::signed_event(test::alice(), 1, test::now(), "e" + std::to_string(i)));
  }
  std::atomic<bool> go{false};
  std::thread writer([&] {
    while (!go.load()) std::this_thread::yield();
    for (const EventPtr& e : events) relay->submit_async(e, nullptr);
  });
  std::vector<std::unique_ptr<Collector>> collectors;
  std::vector<std::unique_ptr<SubscriptionHandle>> handles;
  go = true;
  for (int i = 0; i < 20; ++i) {
    collectors.push_back(std::make_unique<Collector>());
    handles.push_back(
        relay->subscribe({filter(R"({"kinds":[1]})")}, collectors.back()->callbacks()).value());
  }
  writer.join();
  // A sentinel committed after everything else: once a subscriber has it, it has the rest.
  EventPtr sentinel = test::signed_event(test::bob(), 1, test::now(), "sentinel");
  REQUIRE(relay->submit(sentinel).accepted);
  for (auto& c : collectors) {
    REQUIRE(c->wait([&] { return c->has(sentinel); }));
    std::lock_guard lock(c->mu);
    std::set<EventId> ids;
    for (const EventPtr& e : c->events) CHECK(ids.insert(e->id()).second);
    CHECK(ids.size() == kEvents + 1);
  }
}

TEST_CASE("a slow subscription callback never stalls ingest, and is ended with on_closed",
          "[relay][embedding]") {
  auto relay = open_relay([](Options& o) { o.max_outbound_bytes = 64 * 1024; });
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Collector c;
  SubscribeCallbacks cb = c.callbacks();
  auto inner = cb.on_event;
  cb.on_event = [&, inner](const EventPtr& e) {
    released.wait();  // the app is busy
    inner(e);
  };
  auto handle = relay->subscribe({filter(R"({"kinds":[1]})")}, cb).value();
  REQUIRE(c.wait([&] { return c.eose_at != SIZE_MAX; }));
  // 200 events of 2 KB: far more than the subscription's 64 KB queue. Every OK still comes.
  for (int i = 0; i < 200; ++i) {
    EventPtr e = test::signed_event(test::alice(), 1, test::now(),
                                    std::string(2000, 'x') + std::to_string(i));
    REQUIRE(relay->submit(e).accepted);
  }
  release.set_value();
  REQUIRE(c.wait([&] { return !c.closed.empty(); }));
  CHECK(c.closed.rfind("error: subscriber too slow", 0) == 0);
  CHECK(relay->stats().slow_consumer_disconnects == 1);
}

TEST_CASE("closing a subscription from its own callback stops it", "[relay][embedding]") {
  auto relay = open_relay();
  std::unique_ptr<SubscriptionHandle> handle;
  std::promise<void> closed_inside;
  std::atomic<int> calls{0};
  SubscribeCallbacks cb;
  cb.on_event = [&](const EventPtr&) {
    if (calls++ == 0) {
      handle.reset();  // destroys the handle on the callback thread
      closed_inside.set_value();
    }
  };
  handle = relay->subscribe({filter(R"({"kinds":[1]})")}, cb).value();
  REQUIRE(relay->submit(test::signed_event(test::alice(), 1, test::now(), "a")).accepted);
  REQUIRE(closed_inside.get_future().wait_for(5s) == std::future_status::ready);
  REQUIRE(relay->submit(test::signed_event(test::alice(), 1, test::now(), "b")).accepted);
  // A later subscription proves the callback thread is still running, and b reached nobody.
  Collector later;
  auto h2 = relay->subscribe({filter(R"({"kinds":[1]})")}, later.callbacks()).value();
  REQUIRE(later.wait([&] { return later.eose_at == 2; }));
  CHECK(calls.load() == 1);
}

TEST_CASE("a change listener sees every commit's stored and removed events in order",
          "[relay][embedding]") {
  auto relay = open_relay();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ChangeBatch> batches;
  std::set<std::string> threads;
  auto listener = relay->listen([&](const ChangeBatch& b) {
    std::lock_guard lock(mu);
    batches.push_back(b);
    threads.insert(thread_name());
    cv.notify_all();
  });
  const std::int64_t t = test::now() - 10;
  EventPtr profile1 = test::signed_event(test::alice(), 0, t, R"({"name":"a"})");
  EventPtr profile2 = test::signed_event(test::alice(), 0, t + 1, R"({"name":"b"})");
  EventPtr note = test::signed_event(test::alice(), 1, t, "note");
  EventPtr deletion =
      test::signed_event(test::alice(), 5, t + 2, "", {{"e", std::string(note->id_hex())}});
  for (const EventPtr& e : {profile1, note, profile2, deletion}) {
    REQUIRE(relay->submit(e).accepted);
  }
  std::unique_lock lock(mu);
  auto all = [&] {
    std::size_t stored = 0;
    for (const ChangeBatch& b : batches) stored += b.stored.size();
    return stored == 4;
  };
  REQUIRE(cv.wait_for(lock, 5s, all));
  std::vector<EventId> stored, removed;
  std::uint64_t last_seq = 0;
  for (const ChangeBatch& b : batches) {
    CHECK_FALSE(b.gap);
    for (const StoredEvent& s : b.stored) {
      CHECK(s.seq > last_seq);
      last_seq = s.seq;
      stored.push_back(s.event->id());
    }
    for (const RemovedEvent& r : b.removed) removed.push_back(r.id);
  }
  CHECK(stored == std::vector<EventId>{profile1->id(), note->id(), profile2->id(), deletion->id()});
  CHECK(removed == std::vector<EventId>{profile1->id(), note->id()});
  CHECK(threads == std::set<std::string>{"rc-callback"});
}

TEST_CASE("submit_async completes on the callback thread, and may submit from there",
          "[relay][embedding]") {
  auto relay = open_relay();
  std::promise<std::string> first_thread;
  std::promise<OkResult> nested;
  EventPtr second = test::signed_event(test::bob(), 1, test::now(), "second");
  relay->submit_async(test::signed_event(test::alice(), 1, test::now(), "first"),
                      [&](const OkResult& r) {
                        first_thread.set_value(thread_name() + (r.accepted ? "" : " refused"));
                        // A blocking submit from inside the callback must not deadlock.
                        nested.set_value(relay->submit(second));
                      });
  auto t = first_thread.get_future();
  REQUIRE(t.wait_for(5s) == std::future_status::ready);
  CHECK(t.get() == "rc-callback");
  auto n = nested.get_future();
  REQUIRE(n.wait_for(5s) == std::future_status::ready);
  CHECK(n.get().accepted);
}
