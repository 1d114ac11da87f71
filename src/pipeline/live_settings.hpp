// The part of Options that Relay::reconfigure() replaces while the relay runs. Readers take a
// snapshot per message, event or query, so a change applies to the next one and never halfway
// through one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "pipeline/snapshot.hpp"
#include "relaycore/limits.hpp"
#include "relaycore/options.hpp"
#include "relaycore/policy.hpp"

namespace relaycore::pipeline {

struct LiveSettings {
  Limits limits;
  std::shared_ptr<EventPolicy> event_policy;
  std::shared_ptr<FilterPolicy> filter_policy;
  bool auth_on_connect = false;
  std::int64_t max_future_seconds = 0;
  // Read by the writer before each retention step.
  RetentionRules retention;
  // The NIP-11 document, built from the fields above and Options::info.
  std::string info_document;
};

// [Threading] get() and set() may be called from any thread at once.
class LiveOptions {
 public:
  explicit LiveOptions(const Options& options) : current_(make(options)) {}

  // Valid for the relay's lifetime.
  const LiveSettings& get() const noexcept { return current_.get(); }

  // Takes the live fields of `options`; the others are ignored.
  void set(const Options& options) { current_.set(make(options)); }

 private:
  static std::unique_ptr<const LiveSettings> make(const Options& options);

  Snapshot<LiveSettings> current_;
};

}  // namespace relaycore::pipeline
