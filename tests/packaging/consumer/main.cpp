// A tiny program built against an installed or vendored relaycore: parses a REQ, answers a bad
// frame, and signs, re-parses and verifies an event. Exits non-zero on the first failure.
#include <cstdio>
#include <string>
#include <string_view>
#include <variant>

#include "relaycore/event.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/message.hpp"

// The build passes RELAYCORE_CONSUMER_STATIC=1 for a static relaycore: its usage requirements
// must then bring RELAYCORE_STATIC along (through the CMake target or pkg-config Cflags).
#if RELAYCORE_CONSUMER_STATIC && !defined(RELAYCORE_STATIC)
#error "relaycore is static but RELAYCORE_STATIC did not reach the consumer"
#endif

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  auto req = relaycore::parse_client_message(R"(["REQ","sub1",{"kinds":[1],"limit":5}])");
  check(req.is_ok(), "REQ frame parses");
  if (req.is_ok()) {
    const auto* r = std::get_if<relaycore::ReqMessage>(&req.value());
    check(r != nullptr, "REQ frame is a ReqMessage");
    if (r != nullptr) {
      check(r->sub_id == "sub1", "REQ sub id");
      check(r->filters.size() == 1 && r->filters[0].limit == 5u, "REQ filter");
    }
  }

  auto bad = relaycore::parse_client_message("not json");
  check(!bad.is_ok(), "bad frame is rejected");
  if (!bad.is_ok()) {
    const std::string reply = relaycore::error_reply(bad.error());
    check(std::string_view(reply).starts_with(R"(["NOTICE","invalid:)"), "bad frame NOTICE");
  }

  const relaycore::Keypair keys = relaycore::Keypair::generate();
  relaycore::EventDraft draft;
  draft.created_at = 1700000000;
  draft.content = "hello from a packaging consumer";
  auto signed_event = relaycore::sign_event(keys, draft);
  check(signed_event.is_ok(), "sign_event");
  if (signed_event.is_ok()) {
    const relaycore::EventPtr& event = signed_event.value();
    check(event->verify().is_ok(), "signed event verifies");
    auto reparsed = relaycore::parse_event(event->json());
    check(reparsed.is_ok() && reparsed.value()->verify().is_ok(), "re-parsed event verifies");

    // One changed byte of content must break the id.
    std::string tampered(event->json());
    tampered.replace(tampered.find("hello"), 1, "j");
    auto forged = relaycore::parse_event(tampered);
    check(forged.is_ok() && !forged.value()->verify().is_ok(), "tampered event is rejected");
  }

  if (failures == 0) std::puts("consumer: ok");
  return failures == 0 ? 0 : 1;
}
