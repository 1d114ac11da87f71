// flood: one connection sends a round of thousands of full-history REQs at once, reading all
// the while (WsPeer writes and reads together on one io thread), and starts the next round
// when the last is done, until its time is up. A round ends with a COUNT behind its REQs: the
// relay runs one session's queries in order, so its answer comes after every REQ of the round
// was served, refused or replaced. Sub ids either cycle over a few (each REQ replaces the
// subscription of the same id) or are all distinct (past the per-connection cap, refused).
#include <algorithm>
#include <cstdio>

#include "bench_corpus.hpp"
#include "isolation.hpp"
#include "ws_peer.hpp"

namespace relaycore::isolation {
namespace {

constexpr const char* kUsage =
    "usage: relaycore-bench-isolation flood --url URL [flags]\n"
    "  --url URL            the relay\n"
    "  --reqs N             REQs per round (default 5000)\n"
    "  --sub-ids K          sub ids cycle over K values; K >= N makes every id distinct\n"
    "                       (default 20)\n"
    "  --limit L            limit of each REQ, which has no other condition (default 500)\n"
    "  --seconds S          rounds start until this much time has passed (default 12)\n";

struct FloodConfig {
  std::string url;
  std::size_t reqs = 5000, sub_ids = 20, limit = 500, seconds = 12;
};

class Flood {
 public:
  Flood(asio::io_context& io, const FloodConfig& config, const websocket::detail::WsUrl& url)
      : io_(io), config_(config), end_(Clock::now() + std::chrono::seconds(config.seconds)) {
    peer_ = std::make_shared<loadgen::WsPeer>(
        io, url,
        loadgen::WsPeer::Callbacks{[this](const Status& s) { on_open(s); },
                                   [this](std::string_view text) { on_text(text); },
                                   [this](const std::string& why) { finish(why); }});
  }
  void start() { peer_->start(); }
  // Ends the run (on the io thread): closes the connection and stops the io_context.
  void finish(const std::string& why) {
    if (end_reason_.empty()) end_reason_ = why;
    peer_->stop();
    io_.stop();
  }

  std::string json() const {
    std::vector<double> rounds = round_ms_;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"reqs_per_round\":%zu,\"sub_ids\":%zu,\"limit\":%zu,\"rounds\":%zu,"
                  "\"reqs_sent\":%zu,\"round_ms\":",
                  config_.reqs, std::min(config_.sub_ids, config_.reqs), config_.limit,
                  round_ms_.size(), reqs_sent_);
    return buf + latency_json(std::move(rounds)) + "," + got_.json_fields() +
           ",\"end\":" + json_string(end_reason_) + "}";
  }

 private:
  void on_open(const Status& s) {
    if (!s) return finish(s.message());
    send_round();
    announce_attacking();
  }

  void send_round() {
    round_start_ = Clock::now();
    const std::string filter = ",{\"limit\":" + std::to_string(config_.limit) + "}]";
    const bool distinct = config_.sub_ids >= config_.reqs;
    for (std::size_t i = 0; i < config_.reqs; ++i) {
      const std::string sub = distinct ? "f" + std::to_string(round_) + "-" + std::to_string(i)
                                       : "f" + std::to_string(i % config_.sub_ids);
      peer_->send_text("[\"REQ\",\"" + sub + "\"" + filter);
    }
    reqs_sent_ += config_.reqs;
    const std::string marker = "mark" + std::to_string(round_);
    count_head_ = "[\"COUNT\",\"" + marker + "\"";
    closed_head_ = "[\"CLOSED\",\"" + marker + "\"";
    peer_->send_text(count_head_ + ",{\"ids\":[\"" + std::string(64, '0') + "\"]}]");
  }

  void on_text(std::string_view text) {
    if (text.starts_with(count_head_) || text.starts_with(closed_head_)) {
      round_ms_.push_back(ms_since(round_start_));
      ++round_;
      if (Clock::now() < end_) return send_round();
      return finish("done");
    }
    got_.count(text);
  }

  asio::io_context& io_;
  const FloodConfig& config_;
  const Clock::time_point end_;
  std::shared_ptr<loadgen::WsPeer> peer_;
  Clock::time_point round_start_;
  std::size_t round_ = 0, reqs_sent_ = 0;
  // The answers that end the current round: its COUNT's, or a refusal of it.
  std::string count_head_, closed_head_;
  std::vector<double> round_ms_;
  Received got_;
  std::string end_reason_;
};

}  // namespace

int run_flood(int argc, char** argv) {
  FloodConfig c;
  FlagReader(argc, argv, kUsage).read([&](const std::string& flag, const std::string& v) {
    if (flag == "--url") {
      c.url = v;
    } else if (flag == "--reqs") {
      c.reqs = std::max<std::size_t>(1, to_count(flag, v));
    } else if (flag == "--sub-ids") {
      c.sub_ids = std::max<std::size_t>(1, to_count(flag, v));
    } else if (flag == "--limit") {
      c.limit = to_count(flag, v);
    } else if (flag == "--seconds") {
      c.seconds = to_count(flag, v);
    } else {
      return false;
    }
    return true;
  });
  if (c.url.empty()) FlagReader(argc, argv, kUsage).print_usage_and_exit(2);
  Result<websocket::detail::WsUrl> url = websocket::detail::parse_ws_url(c.url);
  if (!url) bench::die(url.error().message());

  asio::io_context io(1);
  Flood flood(io, c, url.value());
  flood.start();
  // A round still running when time is up is left unfinished after this grace.
  asio::steady_timer limit(io, std::chrono::seconds(c.seconds + 30));
  limit.async_wait([&flood](const asio::error_code& ec) {
    if (!ec) flood.finish("a round was still running at the time limit");
  });
  io.run();
  std::printf("%s\n", flood.json().c_str());
  return 0;
}

}  // namespace relaycore::isolation
