// A tiny program built against an installed or vendored relaycore: parses a REQ, answers bad
// frames, signs, re-parses and verifies an event, and opens a relay that logs to a Logger of its
// own. Exits non-zero on the first failure.
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/message.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/version.hpp"

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

// A host's own logger, derived across the library boundary.
class KeepingLogger final : public relaycore::Logger {
 public:
  void log(relaycore::LogLevel /*level*/, std::string_view message) override {
    std::lock_guard lock(mu_);
    lines_.emplace_back(message);
  }
  bool saw(std::string_view needle) {
    std::lock_guard lock(mu_);
    for (const std::string& line : lines_) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

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

  std::string crowded = R"(["REQ","many")";
  for (int i = 0; i < 17; ++i) crowded += ",{}";
  auto too_many = relaycore::parse_client_message(crowded + "]");
  check(!too_many.is_ok() &&
            too_many.error().status.message() == "invalid: too many filters (17, max 16)",
        "a REQ over the filter limit says by how much");

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

  auto level = relaycore::parse_log_level("debug");
  check(level.is_ok() && *level == relaycore::LogLevel::kDebug, "parse_log_level");
  auto logger = std::make_shared<KeepingLogger>();
  relaycore::Options options;
  options.storage = relaycore::new_memory_storage();
  options.logger = logger;
  options.log_level = relaycore::LogLevel::kDebug;
  auto relay = relaycore::Relay::open(std::move(options));
  check(relay.is_ok(), "Relay::open on memory storage");
  if (relay.is_ok()) {
    check(relay.value()->shutdown().is_ok(), "a clean shutdown is ok");
    check(logger->saw("relay: open"), "the relay logs to the host's logger");
  }

  // The generated version header is installed and agrees with the package that was found.
  const std::string version = std::to_string(relaycore::kVersionMajor) + "." +
                              std::to_string(relaycore::kVersionMinor) + "." +
                              std::to_string(relaycore::kVersionPatch);
  check(version == relaycore::kVersionString, "kVersionString is major.minor.patch");
#ifdef RELAYCORE_CONSUMER_EXPECT_VERSION
  check(version == RELAYCORE_CONSUMER_EXPECT_VERSION, "version.hpp matches the package version");
#endif

  if (failures == 0) std::puts("consumer: ok");
  return failures == 0 ? 0 : 1;
}
