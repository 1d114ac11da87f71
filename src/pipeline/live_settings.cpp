#include "pipeline/live_settings.hpp"

namespace relaycore {

// Defined in info_document.cpp.
std::string build_info_document(const Options& options);

namespace pipeline {

std::unique_ptr<const LiveSettings> LiveOptions::make(const Options& options) {
  auto s = std::make_unique<LiveSettings>();
  s->limits = options.limits;
  s->event_policy = options.event_policy;
  s->filter_policy = options.filter_policy;
  s->auth_on_connect = options.auth_on_connect;
  s->max_future_seconds = options.max_future_seconds;
  s->retention = options.retention;
  s->info_document = build_info_document(options);
  return s;
}

}  // namespace pipeline
}  // namespace relaycore
