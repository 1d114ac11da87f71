// The pipeline invariants, one test each; every one fails when its
// invariant is broken.
#include <algorithm>
#include <catch2/catch.hpp>
#include <future>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "relay_test_util.hpp"
#include "relaycore/message.hpp"
#include "relaycore/relay.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;
using test::event_frame;
using test::Harness;
using test::now;

namespace {

// How many failures one throttled log line stands for: itself and the N before it for
// "(N similar lines suppressed before this one)", N for shutdown's "(the last of N similar
// lines suppressed)".
std::size_t failures_in(const std::string& line) {
  static const std::regex kBefore(R"(\((\d+) similar lines suppressed before this one\)$)");
  static const std::regex kLast(R"(\(the last of (\d+) similar lines suppressed\)$)");
  std::smatch m;
  if (std::regex_search(line, m, kBefore)) return 1 + std::stoul(m[1]);
  if (std::regex_search(line, m, kLast)) return std::stoul(m[1]);
  return 1;
}

// Waits up to 5 s for one of the relay's queue counts to reach `n`; true when it is exactly n.
bool queue_reaches(Relay& relay, std::uint64_t RelayStats::*queue, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (relay.stats().*queue < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  return relay.stats().*queue == n;
}

}  // namespace

// Broken by a verify stage that lets a forged or tampered event through.
TEST_CASE("Invariant 1: nothing reaches storage, audit or subscribers before verification",
          "[relay][invariants]") {
  Harness h;
  auto sub = h.connect();
  sub.session->on_message(R"(["REQ","all",{}])");
  REQUIRE(sub.conn->wait_count("[\"EOSE\"", 1));

  EventPtr good = test::signed_event(test::alice(), 1, now(), "good");
  // Same content, signature of another event: the id matches, the signature does not.
  EventPtr other = test::signed_event(test::alice(), 1, now(), "other");
  std::string forged(good->json());
  forged.replace(forged.find(good->sig_hex()), 128, other->sig_hex());
  // Content changed after signing: the id no longer matches.
  std::string tampered(good->json());
  tampered.replace(tampered.find("\"good\""), 6, "\"evil\"");

  auto pub = h.connect();
  pub.session->on_message("[\"EVENT\"," + forged + "]");
  pub.session->on_message("[\"EVENT\"," + tampered + "]");
  REQUIRE(pub.conn->wait_count("[\"OK\"", 2));
  std::vector<std::string> oks = pub.conn->frames();
  // Verified on different threads: the two OKs may come in either order.
  CHECK(std::count(oks.begin(), oks.end(),
                   ok_message(good->id_hex(), false, "invalid: bad signature")) == 1);
  CHECK(std::count(oks.begin(), oks.end(),
                   ok_message(good->id_hex(), false,
                              "invalid: event id does not match its content")) == 1);

  CHECK(h.storage->written().empty());
  CHECK(h.audit->records().empty());
  // A valid event published after both answers is committed, and so dispatched, after anything
  // either of them could have caused: once the subscriber has it, nothing earlier is still due.
  EventPtr sentinel = test::signed_event(test::bob(), 1, now(), "sentinel");
  pub.session->on_message(event_frame(sentinel));
  REQUIRE(sub.conn->wait_event("all", *sentinel));
  CHECK(sub.conn->count("[\"EVENT\"") == 1);
  CHECK_FALSE(*h.storage->contains(good->id()));
  CHECK(h.storage->written().size() == 1);
  CHECK(h.audit->records().size() == 1);
}

// Broken by an OK sent before the commit or before the audit hand-off.
TEST_CASE("Invariant 2: OK true is sent only after commit and audit hand-off",
          "[relay][invariants]") {
  Harness h;
  EventPtr ev = test::signed_event(test::alice(), 1, now(), "durable");
  std::atomic<bool> stored_at_ok{false}, audited_at_ok{false};
  std::promise<void> done;
  h.relay->submit_async(ev, [&](const OkResult& r) {
    CHECK(r.accepted);
    stored_at_ok = h.storage->contains(ev->id()).value();
    audited_at_ok = h.audit->has_record_for(ev->id());
    done.set_value();
  });
  REQUIRE(done.get_future().wait_for(5s) == std::future_status::ready);
  CHECK(stored_at_ok);
  CHECK(audited_at_ok);
}

// Broken by a writer that acks before the audit hand-off, or skips the hand-off when the sink
// is full.
TEST_CASE("Invariant 3: a stuck audit sink holds acks back instead of dropping records",
          "[relay][invariants]") {
  Harness h;
  h.audit->set_open(false);
  auto pub = h.connect();
  EventPtr ev = test::signed_event(test::alice(), 1, now(), "waits for audit");
  pub.session->on_message(event_frame(ev));
  // The writer is stuck handing this event's record to the sink. It sends a session's OK
  // itself, so an OK sent before the hand-off would already be here. (CHECK, not REQUIRE: the
  // gate must open before the relay shuts down.)
  CHECK(h.audit->wait_blocked());
  CHECK(pub.conn->count("[\"OK\"") == 0);
  CHECK(*h.storage->contains(ev->id()));  // committed, but not yet acked
  h.audit->set_open(true);
  REQUIRE(pub.conn->wait_count("[\"OK\"", 1));
  CHECK(pub.conn->frames() == std::vector<std::string>{ok_message(ev->id_hex(), true, "")});
  CHECK(h.audit->has_record_for(ev->id()));
}

// Broken by a deferred mode that fans out on the writer before acking (and, for the inline
// half, by an inline mode that acks first). What deferring buys in ack latency is measured by
// the WebSocket benchmark (benchmarks/README.md); this test checks the order, not the timing.
TEST_CASE("Invariant 4: deferred dispatch keeps a slow subscriber off the ack path",
          "[relay][invariants]") {
  for (DispatchMode mode : {DispatchMode::kDeferred, DispatchMode::kInline}) {
    const bool deferred = mode == DispatchMode::kDeferred;
    INFO((deferred ? "deferred" : "inline"));
    Harness h(mode);
    // The publisher subscribes too: its OK and its copy of the event go out through one queue,
    // in the order the relay queued them.
    auto pub = h.connect();
    REQUIRE(test::req_live(*pub.session, *pub.conn, "own", "{}"));
    auto slow = h.connect();
    REQUIRE(test::req_live(*slow.session, *slow.conn, "slow", "{}"));
    EventPtr ev = test::signed_event(test::alice(), 1, now(), "fan out");
    const std::string ok = ok_message(ev->id_hex(), true, "");
    const std::string own_copy = test::RecordingConnection::event_frame("own", *ev);
    {
      // In deferred mode the slow subscriber's transport is stuck in send() until the OK is in.
      std::unique_ptr<test::RecordingConnection::HeldSends> held;
      if (deferred) held = slow.conn->hold_sends();
      pub.session->on_message(event_frame(ev));
      if (deferred) {
        REQUIRE(slow.conn->wait_send_held());
        CHECK(pub.conn->wait_frame(ok));
      }
    }
    REQUIRE(pub.conn->wait_frame(ok));
    REQUIRE(pub.conn->wait_frame(own_copy));
    REQUIRE(slow.conn->wait_event("slow", *ev));
    const std::vector<std::string> frames = pub.conn->frames();
    const std::size_t ok_at = test::RecordingConnection::index_of(frames, ok);
    const std::size_t copy_at = test::RecordingConnection::index_of(frames, own_copy);
    if (deferred) {
      CHECK(ok_at < copy_at);  // acked, then fanned out
    } else {
      CHECK(copy_at < ok_at);  // fanned out, then acked
    }
  }
}

// Fan-out may fall behind the OKs, but only so far: the events waiting for it hold memory.
// Broken by a dispatch queue that counts commits rather than events (it would take four
// commits of four events each, 18 OKs) or that has no bound at all.
TEST_CASE("Deferred dispatch stops acking once fan-out is dispatch_queue_capacity events behind",
          "[relay][invariants]") {
  Harness h(DispatchMode::kDeferred, [](Options& o) {
    o.dispatch_queue_capacity = 4;
    o.max_write_batch = 4;
  });
  auto pub = h.connect();
  auto slow = h.connect();
  REQUIRE(test::req_live(*slow.session, *slow.conn, "slow", "{}"));
  std::vector<EventPtr> events;
  for (int i = 0; i < 30; ++i) {
    events.push_back(test::signed_event(test::alice(), 1, now(), "behind " + std::to_string(i)));
  }
  {
    std::unique_ptr<test::RecordingConnection::HeldSends> held = slow.conn->hold_sends();
    pub.session->on_message(event_frame(events[0]));
    // The dispatch thread is stuck delivering the first event.
    REQUIRE(slow.conn->wait_send_held());
    // The writer is held at the second event's audit record while the rest queue up, so that
    // it then takes them four at a time.
    h.audit->set_open(false);
    pub.session->on_message(event_frame(events[1]));
    CHECK(h.audit->wait_blocked());
    for (std::size_t i = 2; i < events.size(); ++i) pub.session->on_message(event_frame(events[i]));
    CHECK(queue_reaches(*h.relay, &RelayStats::write_queue, events.size() - 2));
    h.audit->set_open(true);
    // The first event; the second (1 waiting); four more (5 waiting, taken while there was
    // room); four more acked, whose hand-off to dispatch now waits.
    CHECK(pub.conn->wait_count("[\"OK\"", 10));
    CHECK_FALSE(pub.conn->wait_count("[\"OK\"", 11, 300ms));
  }
  REQUIRE(pub.conn->wait_count("[\"OK\"", events.size()));
  for (const EventPtr& ev : events) CHECK(slow.conn->wait_event("slow", *ev));
}

// Broken by a dispatch thread that flushes each commit's fan-out on its own: a subscriber
// would then get one write per commit however far behind fan-out is.
TEST_CASE("Commits that queue up behind a busy fan-out reach each connection in one batch",
          "[relay][invariants]") {
  Harness h(DispatchMode::kDeferred);
  auto pub = h.connect();
  auto slow = h.connect();
  auto watcher = h.connect();
  REQUIRE(test::req_live(*slow.session, *slow.conn, "slow", "{}"));
  REQUIRE(test::req_live(*watcher.session, *watcher.conn, "w", "{}"));
  std::vector<EventPtr> events;
  for (int i = 0; i < 6; ++i) {
    events.push_back(test::signed_event(test::alice(), 1, now(), "queued " + std::to_string(i)));
  }
  {
    std::unique_ptr<test::RecordingConnection::HeldSends> held = slow.conn->hold_sends();
    pub.session->on_message(event_frame(events[0]));
    // The dispatch thread is stuck delivering the first commit.
    REQUIRE(slow.conn->wait_send_held());
    // Five more commits, one at a time, queue up behind it.
    for (std::size_t i = 1; i < events.size(); ++i) {
      pub.session->on_message(event_frame(events[i]));
      REQUIRE(pub.conn->wait_count("[\"OK\"", i + 1));
    }
    REQUIRE(queue_reaches(*h.relay, &RelayStats::dispatch_queue, events.size() - 1));
  }
  for (const EventPtr& ev : events) REQUIRE(watcher.conn->wait_event("w", *ev));
  // The five queued commits went to the watcher in one send_batch(), in commit order.
  std::vector<std::string> expected;
  for (std::size_t i = 1; i < events.size(); ++i) {
    expected.push_back(test::RecordingConnection::event_frame("w", *events[i]));
  }
  const std::vector<std::vector<std::string>> batches = watcher.conn->batches();
  CHECK(std::find(batches.begin(), batches.end(), expected) != batches.end());
}

// Broken by a copy of the event or of its JSON anywhere between submit and the frames.
TEST_CASE("Invariant 5: one immutable event is shared by storage and every recipient",
          "[relay][invariants]") {
  Harness h;
  auto s1 = h.connect();
  auto s2 = h.connect();
  s1.session->on_message(R"(["REQ","a",{}])");
  s2.session->on_message(R"(["REQ","b",{"kinds":[1]}])");
  REQUIRE(s1.conn->wait_count("[\"EOSE\"", 1));
  REQUIRE(s2.conn->wait_count("[\"EOSE\"", 1));
  EventPtr ev = test::signed_event(test::alice(), 1, now(), "shared");
  REQUIRE(h.relay->submit(ev).accepted);
  REQUIRE(s1.conn->wait_count("[\"EVENT\"", 1));
  REQUIRE(s2.conn->wait_count("[\"EVENT\"", 1));
  // Storage got the very object submitted, and both frames point at its one JSON buffer.
  REQUIRE(h.storage->written().size() == 1);
  CHECK(h.storage->written()[0].get() == ev.get());
  CHECK(s1.conn->event_json_ptrs().at(0) == ev->json().data());
  CHECK(s2.conn->event_json_ptrs().at(0) == ev->json().data());
}

// Broken by an EVENT answered twice (say, by the verify stage and the writer) or never.
TEST_CASE("Invariant 6: a burst gets exactly one OK per EVENT", "[relay][invariants]") {
  Harness h(DispatchMode::kDeferred, [](Options& o) {
    o.ingest_queue_capacity = 8;  // small queues: producers must wait, not fail
    o.write_queue_capacity = 8;
    o.max_write_batch = 16;
  });
  auto pub = h.connect();
  std::vector<EventPtr> events;
  for (int i = 0; i < 300; ++i) {
    events.push_back(test::signed_event(test::alice(), 1, now(), "burst " + std::to_string(i)));
  }
  for (int i = 0; i < 300; ++i) pub.session->on_message(event_frame(events[i]));
  pub.session->on_message(event_frame(events[0]));  // and one duplicate
  REQUIRE(pub.conn->wait_count("[\"OK\"", 301));
  // shutdown() returns once every stage has drained and stopped: an OK not sent by then never
  // will be.
  CHECK(h.relay->shutdown().is_ok());
  std::vector<std::string> frames = pub.conn->frames();
  CHECK(test::RecordingConnection::count(frames, "[\"OK\"") == 301);
  std::set<std::string> ids;
  for (const std::string& f : frames) ids.insert(f.substr(7, 64));
  CHECK(ids.size() == 300);
  RelayStats st = h.relay->stats();
  CHECK(st.events_stored == 300);
  CHECK(st.events_duplicate == 1);
}

// Broken by a fan-out that queues past the cap instead of closing the slow subscriber.
TEST_CASE("Invariant 6: a subscriber past its outbound cap is disconnected and counted",
          "[relay][invariants]") {
  Harness h(DispatchMode::kDeferred, [](Options& o) { o.max_outbound_bytes = 64 * 1024; });
  auto slow = h.connect();
  auto healthy = h.connect();
  slow.session->on_message(R"(["REQ","s",{}])");
  healthy.session->on_message(R"(["REQ","h",{}])");
  REQUIRE(slow.conn->wait_count("[\"EOSE\"", 1));
  REQUIRE(healthy.conn->wait_count("[\"EOSE\"", 1));
  slow.conn->fake_queued = 64 * 1024;  // it stopped reading
  for (int i = 0; i < 5; ++i) {
    REQUIRE(h.relay->submit(test::signed_event(test::bob(), 1, now(), std::to_string(i))).accepted);
  }
  REQUIRE(healthy.conn->wait_count("[\"EVENT\"", 5));
  CHECK(slow.conn->wait_closed());
  CHECK(slow.conn->count("[\"EVENT\"") == 0);
  CHECK(h.relay->stats().slow_consumer_disconnects == 1);
}

// Broken by a live delivery of an event the subscription's history already holds (the
// live_from rule), or by a history that is not cut at the commit the REQ went live at.
TEST_CASE("Invariant 7: a REQ during a stream sees every event exactly once",
          "[relay][invariants]") {
  constexpr int kEvents = 400;
  // Declared before the relay, which calls back into them until it is gone.
  std::atomic<int> acked{0};
  std::promise<void> all_acked;
  Harness h;
  std::vector<EventPtr> events;
  for (int i = 0; i < kEvents; ++i) {
    events.push_back(test::signed_event(test::alice(), 1, now() - kEvents + i, std::to_string(i)));
  }
  // The writer stops at the audit hand-off of its first batch: committed, not yet acked or
  // dispatched, with the rest of the stream queued behind it.
  h.audit->set_open(false);
  std::thread publisher([&] {
    for (const EventPtr& e : events) {
      h.relay->submit_async(e, [&](const OkResult&) {
        if (++acked == kEvents) all_acked.set_value();
      });
    }
  });
  CHECK(h.audit->wait_blocked());  // not REQUIRE: the publisher must be joined
  // The REQ lands mid-stream: its history holds the stopped batch, whose dispatch comes after
  // the REQ is live, and the rest arrives live while the history may still be streaming.
  auto sub = h.connect();
  sub.session->on_message(R"(["REQ","x",{"limit":5000}])");
  h.audit->set_open(true);
  publisher.join();
  REQUIRE(all_acked.get_future().wait_for(10s) == std::future_status::ready);
  // Committed after all of the stream, so dispatched after it: once the subscriber has it,
  // every copy of a stream event it will ever get is here.
  EventPtr sentinel = test::signed_event(test::bob(), 1, now(), "sentinel");
  REQUIRE(h.relay->submit(sentinel).accepted);
  REQUIRE(sub.conn->wait_event("x", *sentinel));
  const std::string sentinel_frame = test::RecordingConnection::event_frame("x", *sentinel);
  std::vector<std::string> frames = sub.conn->frames();
  std::set<std::string> seen;
  std::size_t event_frames = 0;
  bool eose = false;
  for (const std::string& f : frames) {
    if (f.rfind("[\"EOSE\"", 0) == 0) eose = true;
    if (f.rfind("[\"EVENT\"", 0) != 0 || f == sentinel_frame) continue;
    ++event_frames;
    seen.insert(f);
  }
  CHECK(eose);
  CHECK(event_frames == kEvents);  // no duplicates
  CHECK(seen.size() == kEvents);   // no gaps
}

// Broken by a storage error passed to the client as it is.
TEST_CASE("Invariant 8: internal failures answer error: without leaking details",
          "[relay][invariants]") {
  auto logger = std::make_shared<test::CapturingLogger>();
  Harness h(DispatchMode::kDeferred, [&](Options& o) { o.logger = logger; });
  h.storage->fail_writes = true;
  // One event per batch: every submit is a failed write.
  constexpr int kEvents = 20;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kEvents; ++i) {
    OkResult r = h.relay->submit(test::signed_event(test::alice(), 1, now(), std::to_string(i)));
    CHECK_FALSE(r.accepted);
    CHECK(r.message == "error: could not store the event");
    CHECK(r.message.find("/var/lib") == std::string::npos);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;

  // The operator gets the storage's own words, at most once a second however often it fails.
  std::vector<test::CapturingLogger::Line> logged = logger->lines_with("disk on fire");
  REQUIRE_FALSE(logged.empty());
  CHECK(logged[0].level == LogLevel::kError);
  CHECK(logged[0].text ==
        "write: storing events failed: error: disk on fire at /var/lib/secret/path");
  CHECK(logged.size() <=
        1 + static_cast<std::size_t>(
                std::chrono::duration_cast<std::chrono::seconds>(elapsed).count()));

  // What was held back is reported by shutdown: every failure is accounted for.
  CHECK(h.relay->shutdown().message() == "");
  std::size_t accounted = 0;
  for (const auto& line : logger->lines_with("disk on fire")) accounted += failures_in(line.text);
  CHECK(accounted == kEvents);
}

TEST_CASE("Invariant 8: host code that throws is answered error: and logged with its message",
          "[relay][invariants]") {
  struct ThrowingPolicy : EventPolicy {
    PolicyDecision check(const EventPtr&, const ClientInfo&) override {
      throw std::runtime_error("rule table missing at /etc/secret/rules");
    }
  };
  auto logger = std::make_shared<test::CapturingLogger>();
  Harness h(DispatchMode::kDeferred, [&](Options& o) {
    o.logger = logger;
    o.event_policy = std::make_shared<ThrowingPolicy>();
  });
  OkResult r = h.relay->submit(test::signed_event(test::alice(), 1, now(), "x"));
  CHECK_FALSE(r.accepted);
  CHECK(r.message == "error: policy failed");
  std::vector<test::CapturingLogger::Line> logged = logger->lines_with("/etc/secret/rules");
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].level == LogLevel::kError);
  CHECK(logged[0].text ==
        "verify: the event policy threw: rule table missing at /etc/secret/rules");
}

// Broken by a shutdown that stops a stage before the stages feeding it have drained.
TEST_CASE("Shutdown drains: every pending EVENT gets its OK and accepted ones are stored",
          "[relay][invariants]") {
  Harness h;
  constexpr int kEvents = 300;
  std::atomic<int> acks{0}, accepted{0};
  std::vector<EventPtr> events;
  for (int i = 0; i < kEvents; ++i) {
    events.push_back(test::signed_event(test::bob(), 1, now(), "drain " + std::to_string(i)));
  }
  for (const EventPtr& e : events) {
    h.relay->submit_async(e, [&](const OkResult& r) {
      ++acks;
      accepted += r.accepted;
    });
  }
  CHECK(h.relay->shutdown().message() == "");
  CHECK(acks.load() == kEvents);
  CHECK(accepted.load() == kEvents);
  for (const EventPtr& e : events) CHECK(*h.storage->contains(e->id()));
  // After shutdown, new work is refused with an answer, not silence.
  OkResult late = h.relay->submit(events[0]);
  CHECK_FALSE(late.accepted);
  CHECK(late.message == "error: relay is shutting down");
}

TEST_CASE("Shutdown reports committed events the PubSub could not carry to other nodes",
          "[relay][invariants]") {
  auto pubsub = std::make_shared<test::FailingPubSub>();
  auto logger = std::make_shared<test::CapturingLogger>();
  Harness h(DispatchMode::kDeferred, [&](Options& o) {
    o.pubsub = pubsub;
    o.logger = logger;
  });
  pubsub->set_open(false);
  std::vector<EventPtr> events;
  for (int i = 0; i < 3; ++i) {
    events.push_back(test::signed_event(test::alice(), 1, now(), "cut off " + std::to_string(i)));
  }
  // The first event's publish waits at the gate; the others queue behind it.
  REQUIRE(h.relay->submit(events[0]).accepted);
  REQUIRE(pubsub->wait_calls(1));
  REQUIRE(h.relay->submit(events[1]).accepted);
  REQUIRE(h.relay->submit(events[2]).accepted);

  std::future<Status> shut = std::async(std::launch::async, [&] { return h.relay->shutdown(); });
  // A resubmitted event is answered duplicate: (and publishes nothing) until shutdown refuses it.
  while (h.relay->submit(events[0]).message != "error: relay is shutting down") {
  }
  pubsub->set_open(true);
  CHECK(shut.get().message() == "error: 3 committed events did not reach the other nodes");
  // Each failure was logged, or counted in a later line.
  std::size_t accounted = 0;
  for (const auto& line : logger->lines_with("dispatch: publishing an event to other nodes failed: "
                                             "error: pubsub: the broker is unreachable")) {
    accounted += failures_in(line.text);
  }
  CHECK(accounted == 3);
}
