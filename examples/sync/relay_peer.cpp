// The remote side (and a local side given as a URL): a relay over relaycore's WebSocket client,
// spoken to with the library's message builders and parse_relay_message().
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "../common/progress.hpp"
#include "relaycore/message.hpp"
#include "relaycore/websocket/client.hpp"
#include "sync.hpp"

namespace relaycore::sync {
namespace {

using namespace std::chrono_literals;

// How often a wait on the relay looks at the stop flag.
constexpr auto kPoll = 250ms;
// A relay silent this long while an answer is due has failed.
constexpr auto kSilence = 60s;
// The relay's max_limit when its NIP-11 document does not give one (NIP-01 relays commonly
// serve 500).
constexpr std::uint32_t kDefaultMaxLimit = 500;
constexpr std::size_t kMaxMessageBytes = 16u << 20;
// A query closed as rate-limited is asked again this many times in all, after pauses that
// start here and double.
constexpr int kTries = 6;
constexpr std::chrono::milliseconds kFirstPause{500};

// Events are read under the largest limits a relay could reasonably hold: the tool checks ids
// and signatures, and the receiving side applies its own size limits.
Limits reading_limits() {
  Limits limits;
  limits.max_message_bytes = kMaxMessageBytes;
  limits.max_event_bytes = kMaxMessageBytes;
  limits.max_content_bytes = kMaxMessageBytes;
  limits.max_event_tags = 1u << 20;
  limits.max_tag_strings = 1u << 20;
  limits.max_tag_value_bytes = kMaxMessageBytes;
  limits.max_json_depth = 16;
  return limits;
}

class RelayPeerImpl final : public RelayPeer {
 public:
  RelayPeerImpl(std::string url, std::unique_ptr<websocket::Client> client, bool negentropy,
                bool counts, std::uint32_t max_limit, std::size_t batch)
      : url_(std::move(url)),
        client_(std::move(client)),
        negentropy_(negentropy),
        counts_(counts),
        max_limit_(max_limit),
        batch_(batch) {}

  const std::string& name() const override { return url_; }
  std::uint32_t max_limit() const override { return max_limit_; }
  bool trusted() const override { return false; }
  bool supports_negentropy() const override { return negentropy_; }

  Status query(const Filter& filter, std::vector<EventPtr>& out, std::uint64_t& bad) override {
    // A relay that limits REQs closes the excess with "rate-limited:"; it is asked again later.
    auto pause = kFirstPause;
    for (int tries = 1;; ++tries) {
      const std::size_t kept = out.size();
      Status s = query_once(filter, out, bad);
      if (s.code() != StatusCode::kRateLimited || tries == kTries) return s;
      out.resize(kept);
      if (verbose()) {
        std::fprintf(stderr, "%s: %s; asking again in %lld ms\n", url_.c_str(), s.message().c_str(),
                     static_cast<long long>(pause.count()));
      }
      for (auto end = std::chrono::steady_clock::now() + pause;
           std::chrono::steady_clock::now() < end;) {
        if (stop_requested()) return interrupted();
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(pause, kPoll));
      }
      pause *= 2;
    }
  }

  Status scan_keys(const Filter& filter, std::vector<NegentropyItem>& out) override {
    Peer* self = this;
    const std::span<Peer* const> peers(&self, 1);
    std::uint64_t bad = 0, overflows = 0;
    examples::Progress progress("scan " + url_, "events", total_of(peers, filter));
    return walk_windows(peers, filter, max_limit_, walk_low(filter), walk_high(filter),
                        std::span<std::uint64_t>(&bad, 1), overflows,
                        [&](std::int64_t, std::int64_t, std::vector<std::vector<EventPtr>>& got) {
                          for (const EventPtr& e : got[0]) {
                            out.push_back({static_cast<std::uint64_t>(e->created_at()), e->id()});
                          }
                          progress.add(got[0].size());
                          return Status::ok();
                        });
  }

  Result<std::uint64_t> count(const Filter& filter) override {
    if (!counts_) return Status::error(url_ + " does not list NIP-45");
    const std::string sub = "c" + std::to_string(++subs_);
    if (Status s = client_->send_text(count_request_message(sub, {filter})); !s) return failed(s);
    for (;;) {
      Result<RelayMessage> m = next(nullptr);
      if (!m) return m.error();
      if (auto* c = std::get_if<CountResultMessage>(&*m); c && c->sub_id == sub) return c->count;
      if (auto* c = std::get_if<ClosedMessage>(&*m); c && c->sub_id == sub) {
        return Status::error(url_ + " closed a COUNT: " + c->message);
      }
    }
  }

  Status store(const std::vector<EventPtr>& events, Tally& tally) override {
    std::set<std::string, std::less<>> pending;  // ids sent, waiting for their OK
    std::size_t next_event = 0;
    while (next_event < events.size() || !pending.empty()) {
      while (pending.size() < batch_ && next_event < events.size()) {
        if (stop_requested()) return interrupted();
        const Event& e = *events[next_event++];
        if (Status s = client_->send_text(client_event_message(e)); !s) return failed(s);
        pending.emplace(e.id_hex());
      }
      Result<RelayMessage> m = next(nullptr);
      if (!m) return m.error();
      if (auto* ok = std::get_if<OkMessage>(&*m)) {
        if (pending.erase(ok->event_id) > 0) {
          tally.count_answer(ok->event_id, ok->accepted, ok->message);
        }
      }
    }
    return Status::ok();
  }

  Status reconcile(const Filter& filter, Negentropy& local, std::vector<EventId>& have,
                   std::vector<EventId>& need) override {
    const std::string sub = "n" + std::to_string(++subs_);
    Status sent = client_->send_text(neg_open_message(sub, filter, local.initiate()));
    if (!sent) return failed(sent);
    for (;;) {
      Result<RelayMessage> m = next(nullptr);
      if (!m) return m.error();
      if (auto* msg = std::get_if<NegMsgMessage>(&*m); msg && msg->sub_id == sub) {
        Result<std::string> reply = local.reconcile(msg->message, have, need);
        if (!reply) {
          static_cast<void>(client_->send_text(neg_close_message(sub)));
          return Status::error(url_ + " sent a bad negentropy message: " + reply.error().message());
        }
        if (reply->empty()) return failed(client_->send_text(neg_close_message(sub)));
        if (Status s = client_->send_text(neg_msg_message(sub, *reply)); !s) return failed(s);
      } else if (auto* err = std::get_if<NegErrMessage>(&*m); err && err->sub_id == sub) {
        // Kept with its prefix, so the caller can tell "blocked:" (too many records) apart.
        return err->reason.rfind("blocked:", 0) == 0 ? Status::blocked(err->reason)
                                                     : Status::error(url_ + ": " + err->reason);
      }
    }
  }

  Status close() override {
    client_->close();
    return Status::ok();
  }

 private:
  // One REQ, read to its EOSE.
  Status query_once(const Filter& filter, std::vector<EventPtr>& out, std::uint64_t& bad) {
    const std::string sub = "q" + std::to_string(++subs_);
    if (Status s = client_->send_text(req_message(sub, {filter})); !s) return failed(s);
    for (;;) {
      Result<RelayMessage> m = next(&bad);
      if (!m) return m.error();
      if (auto* e = std::get_if<SubEventMessage>(&*m); e && e->sub_id == sub) {
        if (!filter.matches(*e->event)) {
          report_bad(url_, e->event->id_hex(), bad, "does not match the query's filter");
        } else {
          out.push_back(std::move(e->event));
        }
      } else if (auto* eose = std::get_if<EoseMessage>(&*m); eose && eose->sub_id == sub) {
        return failed(client_->send_text(close_message(sub)));
      } else if (auto* c = std::get_if<ClosedMessage>(&*m); c && c->sub_id == sub) {
        if (c->message.rfind("rate-limited:", 0) == 0) return Status::rate_limited(c->message);
        return Status::error(url_ + " closed a query: " + c->message);
      }
    }
  }

  Status failed(const Status& s) const {
    if (s) return s;
    return Status::error(url_ + ": " + std::string(s.detail()));
  }

  // The relay's next message, NOTICEs printed and skipped; fails on a stop request, on silence
  // past kSilence and on a broken connection. An EVENT that cannot be read is a bad event when
  // `bad` is given.
  Result<RelayMessage> next(std::uint64_t* bad) {
    const auto deadline = std::chrono::steady_clock::now() + kSilence;
    for (;;) {
      if (stop_requested()) return interrupted();
      Result<std::string> text = client_->receive_text(kPoll);
      if (!text) {
        if (text.error().message().find("timed out") != std::string::npos &&
            std::chrono::steady_clock::now() < deadline) {
          continue;
        }
        return failed(text.error());
      }
      Result<RelayMessage> m = parse_relay_message(*text, limits_);
      if (!m) {
        if (bad && text->rfind("[\"EVENT\"", 0) == 0) {
          report_bad(url_, "", *bad, m.error().message());
          continue;
        }
        return Status::error(url_ + " sent a message that cannot be read: " + m.error().message());
      }
      if (auto* notice = std::get_if<NoticeMessage>(&*m)) {
        std::fprintf(stderr, "notice from %s: %s\n", url_.c_str(), notice->message.c_str());
        continue;
      }
      return m;
    }
  }

  const std::string url_;
  std::unique_ptr<websocket::Client> client_;
  const bool negentropy_;
  const bool counts_;  // lists NIP-45
  const std::uint32_t max_limit_;
  const std::size_t batch_;
  const Limits limits_ = reading_limits();
  std::uint64_t subs_ = 0;
};

// Reads supported_nips (77 and 45) and limitation.max_limit from a NIP-11 document.
void read_information(const std::string& json, bool& negentropy, bool& counts,
                      std::uint32_t& max_limit) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) return;
  simdjson::dom::array nips;
  if (doc["supported_nips"].get_array().get(nips) == simdjson::SUCCESS) {
    for (simdjson::dom::element nip : nips) {
      std::int64_t n = 0;
      if (nip.get_int64().get(n) != simdjson::SUCCESS) continue;
      negentropy = negentropy || n == 77;
      counts = counts || n == 45;
    }
  }
  std::uint64_t limit = 0;
  if (doc["limitation"]["max_limit"].get_uint64().get(limit) == simdjson::SUCCESS && limit > 0) {
    max_limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(limit, UINT32_MAX));
  }
}

}  // namespace

Result<std::unique_ptr<RelayPeer>> RelayPeer::open(const std::string& url, std::size_t batch) {
  websocket::ClientOptions options;
  options.max_message_bytes = kMaxMessageBytes;
  bool negentropy = false;
  bool counts = false;
  std::uint32_t max_limit = kDefaultMaxLimit;
  Result<std::string> info = websocket::fetch_relay_information(url, options);
  if (info) {
    read_information(*info, negentropy, counts, max_limit);
  } else {
    std::fprintf(stderr, "%s: no NIP-11 document (%s); taking it as a NIP-01 relay\n", url.c_str(),
                 std::string(info.error().detail()).c_str());
  }
  Result<std::unique_ptr<websocket::Client>> client = websocket::Client::connect(url, options);
  if (!client) {
    return Status::error("cannot connect to " + url + ": " + std::string(client.error().detail()));
  }
  return std::unique_ptr<RelayPeer>(std::make_unique<RelayPeerImpl>(
      url, std::move(client).value(), negentropy, counts, max_limit, batch));
}

}  // namespace relaycore::sync
