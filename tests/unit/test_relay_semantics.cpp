// NIP-01, 09, 11, 40, 45 and 70 behaviour of a Relay, through sessions as a client sees it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <thread>

#include "relay_test_util.hpp"
#include "relaycore/message.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/version.hpp"
#include "test_util.hpp"

using namespace relaycore;
using namespace std::chrono_literals;
using test::now;

namespace {

struct Fixture : test::SessionFixture {
  using SessionFixture::SessionFixture;

  // Sends a frame and returns the frames it produced up to and including the one matching.
  std::vector<std::string> exchange(const std::string& frame, std::string_view until,
                                    std::size_t n = 1) {
    std::size_t before = conn->frames().size();
    session->on_message(frame);
    conn->wait_until([&](const std::vector<std::string>& fs) {
      std::size_t hits = 0;
      for (std::size_t i = before; i < fs.size(); ++i) hits += fs[i].rfind(until, 0) == 0;
      return hits >= n;
    });
    std::vector<std::string> all = conn->frames();
    return {all.begin() + static_cast<std::ptrdiff_t>(before), all.end()};
  }

  // The OK frame a publish produced (an AUTH challenge may follow it).
  std::string publish(const EventPtr& e) {
    for (const std::string& f : exchange("[\"EVENT\"," + std::string(e->json()) + "]", "[\"OK\"")) {
      if (f.rfind("[\"OK\"", 0) == 0) return f;
    }
    return "";
  }

  // The contents of the events a REQ returns, in order.
  std::vector<std::string> req(const std::string& filter) {
    std::vector<std::string> frames = exchange("[\"REQ\",\"q\"," + filter + "]", "[\"EOSE\"");
    std::vector<std::string> contents;
    for (const std::string& f : frames) {
      if (f.rfind("[\"EVENT\",\"q\",", 0) != 0) continue;
      EventPtr e = parse_event(std::string_view(f).substr(13, f.size() - 14)).value();
      contents.push_back(e->content());
    }
    session->on_message(R"(["CLOSE","q"])");
    return contents;
  }
};

std::string ok_true(const EventPtr& e, std::string_view msg = "") {
  return ok_message(e->id_hex(), true, msg);
}

}  // namespace

TEST_CASE("EVENT: stored, duplicate, and history newest first with limit", "[relay]") {
  Fixture fx;
  const std::int64_t t = now() - 100;
  EventPtr e1 = test::signed_event(test::alice(), 1, t, "one");
  EventPtr e2 = test::signed_event(test::alice(), 1, t + 1, "two");
  EventPtr e3 = test::signed_event(test::alice(), 1, t + 2, "three");
  CHECK(fx.publish(e1) == ok_true(e1));
  CHECK(fx.publish(e2) == ok_true(e2));
  CHECK(fx.publish(e3) == ok_true(e3));
  CHECK(fx.publish(e2) == ok_true(e2, "duplicate: already have this event"));
  CHECK(fx.req("{}") == std::vector<std::string>{"three", "two", "one"});
  CHECK(fx.req(R"({"limit":2})") == std::vector<std::string>{"three", "two"});
  CHECK(fx.req(R"({"limit":0})").empty());
  RelayStats st = fx.relay->stats();
  CHECK(st.events_stored == 3);
  CHECK(st.events_duplicate == 1);
  CHECK(st.frames_event == 4);
}

// Broken by a writer that fans out or audits an event it found already stored.
TEST_CASE("A duplicate is not fanned out again and not audited twice", "[relay]") {
  auto audit = std::make_shared<test::GatedAudit>();
  Fixture fx([&](Options& o) { o.audit = audit; });
  auto sub_conn = std::make_shared<test::RecordingConnection>();
  auto sub = fx.relay->open_session(sub_conn, {});
  sub->on_message(R"(["REQ","live",{"kinds":[1]}])");
  REQUIRE(sub_conn->wait_count("[\"EOSE\"", 1));
  EventPtr e = test::signed_event(test::alice(), 1, now(), "once");
  CHECK(fx.publish(e) == ok_true(e));
  CHECK(fx.publish(e) == ok_true(e, "duplicate: already have this event"));
  // Published after the duplicate was answered, so committed and dispatched after it: once the
  // subscriber has it, a second copy of `e` would have come first.
  EventPtr sentinel = test::signed_event(test::bob(), 1, now(), "sentinel");
  CHECK(fx.publish(sentinel) == ok_true(sentinel));
  REQUIRE(sub_conn->wait_event("live", *sentinel));
  const std::vector<std::string> frames = sub_conn->frames();
  CHECK(std::count(frames.begin(), frames.end(),
                   test::RecordingConnection::event_frame("live", *e)) == 1);
  CHECK(test::RecordingConnection::count(frames, "[\"EVENT\"") == 2);
  // Records are handed to the sink before the OK, so both are in.
  const std::vector<AuditRecord> records = audit->records();
  CHECK(records.size() == 2);
  CHECK(std::count_if(records.begin(), records.end(),
                      [&](const AuditRecord& r) { return r.event_id == e->id(); }) == 1);
}

TEST_CASE("Replaceable and addressable events: newest wins, lowest id on ties", "[relay]") {
  Fixture fx;
  const std::int64_t t = now() - 50;
  EventPtr old_profile = test::signed_event(test::alice(), 0, t, "old");
  EventPtr new_profile = test::signed_event(test::alice(), 0, t + 10, "new");
  fx.publish(old_profile);
  CHECK(fx.publish(new_profile) == ok_true(new_profile));
  CHECK(fx.req(R"({"kinds":[0]})") == std::vector<std::string>{"new"});
  // An older version arriving later is refused and never served.
  EventPtr older = test::signed_event(test::alice(), 0, t + 5, "older");
  CHECK(fx.publish(older).find(",false,") != std::string::npos);
  CHECK(fx.req(R"({"kinds":[0]})") == std::vector<std::string>{"new"});

  // Equal created_at: the lowest id wins whatever the arrival order.
  EventPtr a = test::signed_event(test::bob(), 10002, t, "a");
  EventPtr b = test::signed_event(test::bob(), 10002, t, "b");
  const EventPtr& low = a->id() < b->id() ? a : b;
  const EventPtr& high = a->id() < b->id() ? b : a;
  fx.publish(high);
  fx.publish(low);
  CHECK(fx.req(R"({"kinds":[10002]})") == std::vector<std::string>{low->content()});

  // Addressable: keyed by d tag.
  fx.publish(test::signed_event(test::alice(), 30023, t, "post-a v1", {{"d", "a"}}));
  fx.publish(test::signed_event(test::alice(), 30023, t + 1, "post-b", {{"d", "b"}}));
  fx.publish(test::signed_event(test::alice(), 30023, t + 2, "post-a v2", {{"d", "a"}}));
  CHECK(fx.req(R"({"kinds":[30023]})") == std::vector<std::string>{"post-a v2", "post-b"});
}

TEST_CASE("Ephemeral events reach live subscribers and are never stored", "[relay]") {
  Fixture fx;
  auto sub_conn = std::make_shared<test::RecordingConnection>();
  auto sub = fx.relay->open_session(sub_conn, {});
  sub->on_message(R"(["REQ","eph",{"kinds":[20001]}])");
  REQUIRE(sub_conn->wait_count("[\"EOSE\"", 1));
  EventPtr e = test::signed_event(test::alice(), 20001, now(), "fleeting");
  CHECK(fx.publish(e) == ok_true(e));
  REQUIRE(sub_conn->wait_count("[\"EVENT\"", 1));
  CHECK(fx.req(R"({"kinds":[20001]})").empty());
  CHECK(fx.relay->stats().events_ephemeral == 1);
}

TEST_CASE("NIP-09: authors delete their own events, not others'", "[relay]") {
  Fixture fx;
  const std::int64_t t = now() - 20;
  EventPtr mine = test::signed_event(test::alice(), 1, t, "mine");
  EventPtr theirs = test::signed_event(test::bob(), 1, t, "theirs");
  fx.publish(mine);
  fx.publish(theirs);
  EventPtr del = test::signed_event(
      test::alice(), 5, t + 1, "",
      {{"e", std::string(mine->id_hex())}, {"e", std::string(theirs->id_hex())}});
  CHECK(fx.publish(del) == ok_true(del));
  CHECK(fx.req(R"({"kinds":[1]})") == std::vector<std::string>{"theirs"});
  // Re-publishing the deleted event does not bring it back.
  CHECK(fx.publish(mine).find(",false,\"blocked:") != std::string::npos);
  CHECK(fx.req(R"({"kinds":[1]})") == std::vector<std::string>{"theirs"});
}

// Broken by an expiration that is not checked on publish, or not applied to queries once the
// time has come (or applied early).
TEST_CASE("NIP-40: expired events are refused and never served", "[relay]") {
  Fixture fx;
  const std::int64_t t = now();
  EventPtr expired =
      test::signed_event(test::alice(), 1, t - 10, "gone", {{"expiration", std::to_string(t - 1)}});
  CHECK(fx.publish(expired) == ok_message(expired->id_hex(), false, "invalid: event has expired"));
  EventPtr soon =
      test::signed_event(test::alice(), 1, t, "soon", {{"expiration", std::to_string(t + 2)}});
  CHECK(fx.publish(soon) == ok_true(soon));
  CHECK(fx.req("{}") == std::vector<std::string>{"soon"});
  // Expiry follows the wall clock: ask until the event is gone (about two seconds), giving up
  // well past its expiration.
  CHECK(test::poll_until([&] { return fx.req("{}").empty(); }, 6000ms));
  CHECK(now() >= t + 2);  // not before its time
}

TEST_CASE("created_at too far in the future is refused", "[relay]") {
  Fixture fx;
  EventPtr future = test::signed_event(test::alice(), 1, now() + 3600, "from the future");
  CHECK(fx.publish(future) ==
        ok_message(future->id_hex(), false, "invalid: created_at is too far in the future"));
  EventPtr near = test::signed_event(test::alice(), 1, now() + 60, "a little ahead");
  CHECK(fx.publish(near) == ok_true(near));
}

// Broken by a CLOSE that leaves the subscription filed, or a reused id that keeps the old filter.
TEST_CASE("REQ goes live after EOSE, CLOSE ends it, a reused id replaces it", "[relay]") {
  Fixture fx;
  auto sub_conn = std::make_shared<test::RecordingConnection>();
  auto sub = fx.relay->open_session(sub_conn, {});
  sub->on_message(R"(["REQ","s",{"kinds":[1]}])");
  REQUIRE(sub_conn->wait_count("[\"EOSE\",\"s\"]", 1));
  fx.publish(test::signed_event(test::alice(), 1, now(), "live 1"));
  REQUIRE(sub_conn->wait_count("[\"EVENT\",\"s\"", 1));
  // Re-using the id replaces the filter: kind 7 only now.
  sub->on_message(R"(["REQ","s",{"kinds":[7]}])");
  REQUIRE(sub_conn->wait_count("[\"EOSE\",\"s\"]", 2));
  fx.publish(test::signed_event(test::alice(), 1, now(), "not for s"));
  fx.publish(test::signed_event(test::alice(), 7, now(), "reaction"));
  REQUIRE(sub_conn->wait_count("[\"EVENT\",\"s\"", 2));
  sub->on_message(R"(["CLOSE","s"])");
  // Another subscription of the same session watches the kind "s" had. The frames of one
  // session go out in the order queued, and dispatch follows commit order, so once "watch" has
  // the event published after "after close", a copy of "after close" for "s" would be in.
  sub->on_message(R"(["REQ","watch",{"kinds":[7]}])");
  REQUIRE(sub_conn->wait_count("[\"EOSE\",\"watch\"]", 1));
  fx.publish(test::signed_event(test::alice(), 7, now(), "after close"));
  EventPtr sentinel = test::signed_event(test::alice(), 7, now(), "sentinel");
  fx.publish(sentinel);
  REQUIRE(sub_conn->wait_event("watch", *sentinel));
  std::vector<std::string> s_frames;
  for (const std::string& f : sub_conn->frames()) {
    if (f.rfind("[\"EVENT\",\"s\"", 0) == 0) s_frames.push_back(f);
  }
  REQUIRE(s_frames.size() == 2);
  CHECK(s_frames.back().find("reaction") != std::string::npos);
  sub->on_message(R"(["CLOSE","watch"])");
  CHECK(fx.relay->stats().subscriptions_open == 0);
}

TEST_CASE("Subscription and filter limits answer CLOSED with a prefix", "[relay]") {
  Fixture fx([](Options& o) {
    o.limits.max_subscriptions = 2;
    o.limits.max_filters = 2;
  });
  fx.exchange(R"(["REQ","a",{}])", "[\"EOSE\"");
  fx.exchange(R"(["REQ","b",{}])", "[\"EOSE\"");
  CHECK(fx.exchange(R"(["REQ","c",{}])", "[\"CLOSED\"").back() ==
        R"x(["CLOSED","c","rate-limited: too many subscriptions (max 2)"])x");
  // Replacing an open one is not a new subscription.
  CHECK(fx.exchange(R"(["REQ","a",{"kinds":[1]}])", "[\"EOSE\"").back() == R"(["EOSE","a"])");
  CHECK(fx.exchange(R"(["REQ","d",{},{},{}])", "[\"CLOSED\"").back() ==
        R"x(["CLOSED","d","invalid: too many filters (3, max 2)"])x");
}

TEST_CASE("COUNT answers with the number of matching events (NIP-45)", "[relay]") {
  Fixture fx;
  for (int i = 0; i < 5; ++i)
    fx.publish(test::signed_event(test::alice(), 1, now(), std::to_string(i)));
  fx.publish(test::signed_event(test::bob(), 7, now(), "+"));
  CHECK(fx.exchange(R"(["COUNT","c",{"kinds":[1]}])", "[\"COUNT\"").back() ==
        R"(["COUNT","c",{"count":5}])");
  CHECK(fx.exchange(R"(["COUNT","c",{"kinds":[1]},{"kinds":[7]}])", "[\"COUNT\"").back() ==
        R"(["COUNT","c",{"count":6}])");
}

TEST_CASE("NIP-11 document lists the NIPs implemented and the configured limits", "[relay]") {
  Fixture fx([](Options& o) {
    o.limits.max_subscriptions = 33;
    o.limits.max_message_bytes = 99999;
    o.info.name = "test relay";
  });
  std::string doc = fx.relay->info_document();
  CHECK(doc.find("\"name\":\"test relay\"") != std::string::npos);
  CHECK(doc.find("\"supported_nips\":[1,9,11,40,42,45,50,70,77]") != std::string::npos);
  CHECK(doc.find("\"max_subscriptions\":33") != std::string::npos);
  CHECK(doc.find("\"max_message_length\":99999") != std::string::npos);
}

TEST_CASE("NIP-11 names the software by its project URL and the version CMake built", "[relay]") {
  Fixture fx;
  std::string doc = fx.relay->info_document();
  CHECK(doc.find(R"("version":")" RELAYCORE_TEST_PROJECT_VERSION R"(")") != std::string::npos);
  CHECK(doc.find(R"("software":")" RELAYCORE_TEST_PROJECT_URL R"(")") != std::string::npos);
  CHECK(std::string_view(RELAYCORE_TEST_PROJECT_URL).starts_with("https://"));
  CHECK(std::string_view(kVersionString) == RELAYCORE_TEST_PROJECT_VERSION);
  CHECK(RELAYCORE_VERSION == kVersionMajor * 10000 + kVersionMinor * 100 + kVersionPatch);
  CHECK(std::to_string(kVersionMajor) + "." + std::to_string(kVersionMinor) + "." +
            std::to_string(kVersionPatch) ==
        RELAYCORE_TEST_PROJECT_VERSION);
}

TEST_CASE("Malformed frames get NIP-01 answers and the session stays usable", "[relay]") {
  Fixture fx;
  CHECK(fx.exchange("not json", "[\"NOTICE\"").back() ==
        R"x(["NOTICE","invalid: malformed JSON literal (expected true, false or null)"])x");
  CHECK(fx.exchange(R"(["REQ","x",{"kinds":"no"}])", "[\"CLOSED\"").back() ==
        R"(["CLOSED","x","invalid: filter \"kinds\" must be an array, not string"])");
  EventPtr e = test::signed_event(test::alice(), 1, now(), "still works");
  CHECK(fx.publish(e) == ok_true(e));
  CHECK(fx.relay->stats().frames_invalid == 2);
}

namespace {

class BlockKind7 : public EventPolicy {
 public:
  PolicyDecision check(const EventPtr& e, const ClientInfo&) override {
    if (e->kind() == 7) return PolicyDecision::reject(Status::blocked("no reactions here"));
    if (e->kind() == 8) return PolicyDecision::shadow_reject();
    if (e->kind() == 9) return PolicyDecision::require_auth("members only");
    if (e->kind() == 10) throw std::runtime_error("bug in host code");
    return PolicyDecision::accept();
  }
};

}  // namespace

TEST_CASE("EventPolicy: reject, shadow-reject, require auth, and a throwing policy", "[relay]") {
  Fixture fx([](Options& o) { o.event_policy = std::make_shared<BlockKind7>(); });
  EventPtr r = test::signed_event(test::alice(), 7, now(), "+");
  CHECK(fx.publish(r) == ok_message(r->id_hex(), false, "blocked: no reactions here"));
  EventPtr s = test::signed_event(test::alice(), 8, now(), "shadow");
  CHECK(fx.publish(s) == ok_true(s));
  CHECK(fx.req(R"({"kinds":[8]})").empty());
  EventPtr a = test::signed_event(test::alice(), 9, now(), "auth");
  std::vector<std::string> frames =
      fx.exchange("[\"EVENT\"," + std::string(a->json()) + "]", "[\"AUTH\"");
  CHECK(frames.front() == ok_message(a->id_hex(), false, "auth-required: members only"));
  CHECK(frames.back() == auth_challenge_message(fx.session->auth_challenge()));
  EventPtr t = test::signed_event(test::alice(), 10, now(), "throws");
  CHECK(fx.publish(t) == ok_message(t->id_hex(), false, "error: policy failed"));
}

TEST_CASE("NIP-42 AUTH and NIP-70 protected events", "[relay]") {
  Fixture fx([](Options& o) { o.relay_url = "wss://relay.example.com"; });
  EventPtr prot = test::signed_event(test::alice(), 1, now(), "protected", {{"-"}});
  std::vector<std::string> frames =
      fx.exchange("[\"EVENT\"," + std::string(prot->json()) + "]", "[\"AUTH\"");
  CHECK(frames.front() ==
        ok_message(prot->id_hex(), false,
                   "auth-required: this event may only be published by its author"));
  const std::string challenge = fx.session->auth_challenge();
  CHECK(challenge.size() == 32);

  auto auth = [&](const Keypair& k, std::string relay, std::string chal, std::int64_t at) {
    EventPtr e = test::signed_event(k, 22242, at, "", {{"relay", relay}, {"challenge", chal}});
    return fx.exchange("[\"AUTH\"," + std::string(e->json()) + "]", "[\"OK\"").back();
  };
  CHECK(auth(test::alice(), "wss://other.example.com", challenge, now())
            .find("invalid: auth event is for another relay") != std::string::npos);
  CHECK(auth(test::alice(), "wss://relay.example.com", "wrong", now())
            .find("invalid: auth event does not carry this connection's challenge") !=
        std::string::npos);
  CHECK(auth(test::alice(), "wss://relay.example.com", challenge, now() - 3600)
            .find("not within 10 minutes") != std::string::npos);
  CHECK(auth(test::alice(), "WSS://Relay.Example.com/", challenge, now()).find(",true,") !=
        std::string::npos);
  CHECK(fx.publish(prot) == ok_true(prot));
  // Authenticated as alice, not bob.
  EventPtr bobs = test::signed_event(test::bob(), 1, now(), "bob protected", {{"-"}});
  CHECK(fx.publish(bobs).find("auth-required:") != std::string::npos);
  // Auth events are never stored or broadcast, even when sent as EVENT.
  EventPtr as_event =
      test::signed_event(test::alice(), 22242, now(), "",
                         {{"relay", "wss://relay.example.com"}, {"challenge", challenge}});
  CHECK(fx.publish(as_event).find(",false,\"invalid:") != std::string::npos);
  CHECK(fx.req(R"({"kinds":[22242]})").empty());
}

TEST_CASE("NIP-70: a repost that embeds a protected event is refused", "[relay]") {
  Fixture fx;
  const std::string kRefused = "invalid: a repost must not embed a protected event";
  EventPtr prot = test::signed_event(test::bob(), 1, now(), "members only", {{"-"}});
  EventPtr open = test::signed_event(test::bob(), 1, now(), "for everyone");
  const std::vector<Tag> points_at = {{"e", std::string(prot->id_hex())},
                                      {"p", std::string(prot->pubkey_hex())}};
  auto repost = [&](const Keypair& k, std::uint16_t kind, std::string content) {
    return test::signed_event(k, kind, now(), std::move(content), points_at);
  };
  // Kind 6 and kind 16 alike, from another author or from the author itself.
  for (std::uint16_t kind : {6, 16}) {
    INFO("kind " << kind);
    EventPtr by_alice = repost(test::alice(), kind, std::string(prot->json()));
    CHECK(fx.publish(by_alice) == ok_message(by_alice->id_hex(), false, kRefused));
    EventPtr by_bob = repost(test::bob(), kind, std::string(prot->json()));
    CHECK(fx.publish(by_bob) == ok_message(by_bob->id_hex(), false, kRefused));
  }
  // The embedded JSON need not be a valid event: tags are enough.
  EventPtr bare = repost(test::alice(), 6, R"({"tags":[["t","x"],["-"]]})");
  CHECK(fx.publish(bare) == ok_message(bare->id_hex(), false, kRefused));
  CHECK(fx.req(R"({"kinds":[6,16]})").empty());

  // Allowed: a repost that only points at the protected event, one that embeds an unprotected
  // event, content that is not JSON, and a non-repost quoting a protected event.
  EventPtr pointer = repost(test::alice(), 6, "");
  CHECK(fx.publish(pointer) == ok_true(pointer));
  EventPtr of_open = repost(test::alice(), 16, std::string(open->json()));
  CHECK(fx.publish(of_open) == ok_true(of_open));
  EventPtr text = repost(test::alice(), 6, "nice post");
  CHECK(fx.publish(text) == ok_true(text));
  EventPtr note = repost(test::alice(), 1, std::string(prot->json()));
  CHECK(fx.publish(note) == ok_true(note));
  CHECK(fx.req(R"({"kinds":[6,16]})").size() == 3);
}

// Broken by a writer that wakes the dispatch thread for commits nobody can receive, or that
// stops handing over commits once a subscription is open.
TEST_CASE("Commits go to the dispatch thread only while something listens", "[relay]") {
  Fixture fx;
  EventPtr unheard = test::signed_event(test::alice(), 1, now(), "unheard");
  CHECK(fx.publish(unheard) == ok_true(unheard));

  auto sub_conn = std::make_shared<test::RecordingConnection>();
  auto sub = fx.relay->open_session(sub_conn, {});
  sub->on_message(R"(["REQ","live",{"kinds":[1]}])");
  // The event committed before the subscription opened is in its history.
  REQUIRE(sub_conn->wait_event("live", *unheard));
  REQUIRE(sub_conn->wait_count("[\"EOSE\"", 1));
  EventPtr heard = test::signed_event(test::bob(), 1, now(), "heard");
  CHECK(fx.publish(heard) == ok_true(heard));
  REQUIRE(sub_conn->wait_event("live", *heard));
  // The dispatch thread records a job's latency just after delivering it, and takes jobs in
  // commit order: had the first commit gone to it, it would be counted by now as well.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (fx.relay->stats().dispatch_latency.count == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  CHECK(fx.relay->stats().dispatch_latency.count == 1);
}
