// The C API's shared pieces: the thread's last error, strings handed out, the version, and
// reading events and filters from JSON text.
#include <simdjson.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>
#include <variant>

#include "capi/capi.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/message.hpp"
#include "relaycore/version.hpp"
#include "util/text.hpp"

namespace relaycore::capi {
namespace {

thread_local std::string t_last_error;
// Set when the message itself could not be stored.
thread_local bool t_out_of_memory = false;
thread_local int t_connection_callbacks = 0;

// JSON's white space.
std::string_view trim_json(std::string_view s) { return trim(s, " \t\n\r"); }

// The tags of relaycore_sign_event: an array of arrays of strings.
relaycore_status parse_tags(const char* json, std::vector<Tag>& tags) {
  if (json == nullptr) return RELAYCORE_OK;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json, std::strlen(json)).get(root) != simdjson::SUCCESS) {
    return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: tags are not valid JSON");
  }
  simdjson::dom::array outer;
  if (root.get(outer) != simdjson::SUCCESS) {
    return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: tags must be an array of arrays");
  }
  for (simdjson::dom::element item : outer) {
    simdjson::dom::array inner;
    if (item.get(inner) != simdjson::SUCCESS) {
      return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: each tag must be an array of strings");
    }
    Tag tag;
    for (simdjson::dom::element value : inner) {
      std::string_view s;
      if (value.get(s) != simdjson::SUCCESS) {
        return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: each tag must be an array of strings");
      }
      tag.emplace_back(s);
    }
    tags.push_back(std::move(tag));
  }
  return RELAYCORE_OK;
}

relaycore_status keypair_arg(const char* secret_hex, std::optional<Keypair>& out) {
  if (secret_hex == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: secret key is NULL");
  Result<Keypair> keys = Keypair::from_secret_hex(secret_hex);
  if (!keys) return fail(keys.error());
  out = keys.value();
  return RELAYCORE_OK;
}

}  // namespace

relaycore_status fail(relaycore_status status, std::string_view message) noexcept {
  try {
    t_last_error.assign(message);
    t_out_of_memory = false;
  } catch (...) {
    t_last_error.clear();
    t_out_of_memory = true;
  }
  return status;
}

relaycore_status fail(const Status& status) noexcept {
  return fail(status.code() == StatusCode::kInvalid ? RELAYCORE_INVALID_ARGUMENT : RELAYCORE_ERROR,
              status.message());
}

void clear_error() noexcept {
  t_last_error.clear();
  t_out_of_memory = false;
}

bool in_connection_callback() noexcept { return t_connection_callbacks > 0; }

ConnectionCallbackScope::ConnectionCallbackScope() noexcept { ++t_connection_callbacks; }
ConnectionCallbackScope::~ConnectionCallbackScope() { --t_connection_callbacks; }

relaycore_status check_handle(const void* handle, const char* what) noexcept {
  if (handle == nullptr) {
    return fail(RELAYCORE_INVALID_ARGUMENT, std::string("invalid: ") + what + " is NULL");
  }
  if (in_connection_callback()) {
    return fail(RELAYCORE_WRONG_THREAD,
                "error: called from a session callback; queue the work and return instead");
  }
  return RELAYCORE_OK;
}

relaycore_status check_open(const RelayState& state) noexcept {
  if (state.closed.load()) return fail(RELAYCORE_CLOSED, "error: relay is closed");
  return RELAYCORE_OK;
}

void free_handle(std::function<void()> body) noexcept {
  try {
    if (in_connection_callback()) {
      std::thread(std::move(body)).detach();
    } else {
      body();
    }
  } catch (...) {
    // Out of memory or threads: the handle leaks rather than the process failing.
  }
}

char* copy_out(std::string_view s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

relaycore_status parse_event_arg(const char* json, const Limits& limits, EventPtr& out) {
  if (json == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: event is NULL");
  Result<EventPtr> event = parse_event(json, limits);
  if (!event) return fail(event.error());
  out = std::move(event).value();
  return RELAYCORE_OK;
}

relaycore_status parse_filters_arg(const char* json, const Limits& limits,
                                   std::vector<Filter>& out) {
  if (json == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: filters are NULL");
  std::string_view text = trim_json(json);
  // The filters become the tail of a REQ frame, so they get exactly a client's REQ checks
  // (strict JSON, the filter limits, max_filters) and its messages.
  const bool list = text.size() >= 2 && text.front() == '[' && text.back() == ']';
  if (list) text = trim_json(text.substr(1, text.size() - 2));
  if (text.empty()) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: no filters");
  std::string frame;
  frame.reserve(text.size() + 16);
  frame.append(R"(["REQ","c",)").append(text).append("]");
  auto parsed = parse_client_message(frame, limits);
  if (!parsed) return fail(parsed.error().status);
  auto* req = std::get_if<ReqMessage>(&parsed.value());
  if (req == nullptr) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: filters are not filters");
  if (!list && req->filters.size() != 1) {
    return fail(RELAYCORE_INVALID_ARGUMENT,
                "invalid: filters must be one filter object or an array of them");
  }
  out = std::move(req->filters);
  return RELAYCORE_OK;
}

}  // namespace relaycore::capi

using namespace relaycore;
using namespace relaycore::capi;

extern "C" {

const char* relaycore_status_name(relaycore_status status) {
  switch (status) {
    case RELAYCORE_OK:
      return "RELAYCORE_OK";
    case RELAYCORE_INVALID_ARGUMENT:
      return "RELAYCORE_INVALID_ARGUMENT";
    case RELAYCORE_ERROR:
      return "RELAYCORE_ERROR";
    case RELAYCORE_CLOSED:
      return "RELAYCORE_CLOSED";
    case RELAYCORE_WRONG_THREAD:
      return "RELAYCORE_WRONG_THREAD";
    case RELAYCORE_STATUS_FORCE_INT:
      break;
  }
  return "RELAYCORE_UNKNOWN";
}

const char* relaycore_last_error(void) {
  return t_out_of_memory ? "error: out of memory" : t_last_error.c_str();
}

void relaycore_free(void* ptr) { std::free(ptr); }

const char* relaycore_version(void) { return kVersionString; }

relaycore_status relaycore_sign_event(const char* secret_hex, uint32_t kind, int64_t created_at,
                                      const char* content, const char* tags_json,
                                      char** event_json_out) {
  zero(event_json_out);
  return run([&] {
    if (event_json_out == nullptr) {
      return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: event_json_out is NULL");
    }
    if (kind > 65535) return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: kind is over 65535");
    std::optional<Keypair> keys;
    if (relaycore_status s = keypair_arg(secret_hex, keys); s != RELAYCORE_OK) return s;
    EventDraft draft;
    draft.kind = static_cast<std::uint16_t>(kind);
    draft.created_at = created_at;
    if (content != nullptr) draft.content = content;
    if (relaycore_status s = parse_tags(tags_json, draft.tags); s != RELAYCORE_OK) return s;
    Result<EventPtr> event = sign_event(*keys, std::move(draft));
    if (!event) return fail(event.error());
    *event_json_out = copy_out((*event)->json());
    return RELAYCORE_OK;
  });
}

relaycore_status relaycore_public_key(const char* secret_hex, char** pubkey_hex_out) {
  zero(pubkey_hex_out);
  return run([&] {
    if (pubkey_hex_out == nullptr) {
      return fail(RELAYCORE_INVALID_ARGUMENT, "invalid: pubkey_hex_out is NULL");
    }
    std::optional<Keypair> keys;
    if (relaycore_status s = keypair_arg(secret_hex, keys); s != RELAYCORE_OK) return s;
    *pubkey_hex_out = copy_out(to_hex(keys->pubkey()));
    return RELAYCORE_OK;
  });
}

}  // extern "C"
