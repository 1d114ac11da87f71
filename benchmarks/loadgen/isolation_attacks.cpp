// slow and heavy: the attackers that need no more than the library's blocking client. The slow
// reader really stops reading: after its REQs it does not call recv() at all for the hold time,
// so the kernel's socket buffers fill and the relay's outbound queue behind them; only then
// does it read what is left, to report what the relay did with it.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "bench_corpus.hpp"
#include "isolation.hpp"
#include "relaycore/websocket/client.hpp"

namespace relaycore::isolation {
namespace {

constexpr const char* kSlowUsage =
    "usage: relaycore-bench-isolation slow --url URL [flags]\n"
    "  --url URL            the relay\n"
    "  --reqs N             REQs sent, each its own subscription (default 60)\n"
    "  --limit L            limit of each REQ (default 200)\n"
    "  --topic T            the #t value the REQs ask for (default topic0)\n"
    "  --hold-seconds S     how long to read nothing after the REQs (default 14)\n"
    "  --drain-seconds D    then read for at most this long to count what came (default 10)\n";

constexpr const char* kHeavyUsage =
    "usage: relaycore-bench-isolation heavy --url URL [flags]\n"
    "  --url URL            the relay\n"
    "  --connections C      clients, one thread each (default 3)\n"
    "  --seconds S          how long to keep querying (default 12)\n"
    "  --search WORD        the NIP-50 search string (default zzqx, which nothing contains,\n"
    "                       so every search reads the whole store)\n"
    "  --tag-values V       values in the #t filter, topic0..topic<V-1> (default 1000)\n"
    "  --limit L            limit of each query (default 500)\n";

}  // namespace

int run_slow(int argc, char** argv) {
  std::string url, topic = "topic0";
  std::size_t reqs = 60, limit = 200, hold_seconds = 14, drain_seconds = 10;
  FlagReader(argc, argv, kSlowUsage).read([&](const std::string& flag, const std::string& v) {
    if (flag == "--url") {
      url = v;
    } else if (flag == "--reqs") {
      reqs = to_count(flag, v);
    } else if (flag == "--limit") {
      limit = to_count(flag, v);
    } else if (flag == "--topic") {
      topic = v;
    } else if (flag == "--hold-seconds") {
      hold_seconds = to_count(flag, v);
    } else if (flag == "--drain-seconds") {
      drain_seconds = to_count(flag, v);
    } else {
      return false;
    }
    return true;
  });
  if (url.empty()) FlagReader(argc, argv, kSlowUsage).print_usage_and_exit(2);

  std::unique_ptr<websocket::Client> c = connect_or_die(url);
  for (std::size_t i = 0; i < reqs; ++i) {
    const std::string req = "[\"REQ\",\"slow" + std::to_string(i) + "\",{\"#t\":[" +
                            json_string(topic) + "],\"limit\":" + std::to_string(limit) + "}]";
    if (Status s = c->send_text(req); !s) bench::die("send: " + s.message());
  }
  announce_attacking();
  // Not a single read in this time.
  std::this_thread::sleep_for(std::chrono::seconds(hold_seconds));

  Received got;
  std::string end = "still open after the drain";
  const Clock::time_point drain_end = Clock::now() + std::chrono::seconds(drain_seconds);
  while (Clock::now() < drain_end) {
    Result<std::string> text = c->receive_text(std::chrono::milliseconds(2000));
    if (!text) {
      end = text.error().message();
      break;
    }
    got.count(*text);
  }
  std::printf("{\"reqs\":%zu,\"limit\":%zu,\"hold_seconds\":%zu,%s,\"end\":%s}\n", reqs, limit,
              hold_seconds, got.json_fields().c_str(), json_string(end).c_str());
  return 0;
}

int run_heavy(int argc, char** argv) {
  std::string url, search = "zzqx";
  std::size_t connections = 3, seconds = 12, tag_values = 1000, limit = 500;
  FlagReader(argc, argv, kHeavyUsage).read([&](const std::string& flag, const std::string& v) {
    if (flag == "--url") {
      url = v;
    } else if (flag == "--connections") {
      connections = std::max<std::size_t>(1, to_count(flag, v));
    } else if (flag == "--seconds") {
      seconds = to_count(flag, v);
    } else if (flag == "--search") {
      search = v;
    } else if (flag == "--tag-values") {
      tag_values = std::max<std::size_t>(1, to_count(flag, v));
    } else if (flag == "--limit") {
      limit = to_count(flag, v);
    } else {
      return false;
    }
    return true;
  });
  if (url.empty()) FlagReader(argc, argv, kHeavyUsage).print_usage_and_exit(2);

  const std::string tail = ",\"limit\":" + std::to_string(limit) + "}]";
  const std::string search_req = "[\"REQ\",\"h\",{\"search\":" + json_string(search) + tail;
  std::string tags_req = "[\"REQ\",\"h\",{\"#t\":[";
  for (std::size_t i = 0; i < tag_values; ++i) {
    tags_req += (i == 0 ? "\"" : ",\"") + bench::topic_name(i) + "\"";
  }
  tags_req += "]" + tail;

  struct Worker {
    std::unique_ptr<websocket::Client> client;
    std::vector<double> search_ms, tags_ms;
    Received got;
    std::string error;
  };
  std::vector<Worker> workers(connections);
  for (Worker& w : workers) w.client = connect_or_die(url);
  announce_attacking();
  const Clock::time_point end = Clock::now() + std::chrono::seconds(seconds);
  auto loop = [&](Worker& w) {
    for (std::size_t n = 0; Clock::now() < end && w.error.empty(); ++n) {
      const bool is_search = n % 2 == 0;
      const Clock::time_point t0 = Clock::now();
      if (Status s = w.client->send_text(is_search ? search_req : tags_req); !s) {
        w.error = s.message();
        break;
      }
      for (;;) {
        Result<std::string> text = w.client->receive_text(std::chrono::seconds(60));
        if (!text) {
          w.error = text.error().message();
          break;
        }
        w.got.count(*text);
        if (*text == "[\"EOSE\",\"h\"]" || text->starts_with("[\"CLOSED\",\"h\"")) break;
      }
      (is_search ? w.search_ms : w.tags_ms).push_back(ms_since(t0));
      if (Status s = w.client->send_text("[\"CLOSE\",\"h\"]"); !s) w.error = s.message();
    }
  };
  std::vector<std::thread> threads;
  for (Worker& w : workers) threads.emplace_back(loop, std::ref(w));
  for (std::thread& t : threads) t.join();

  std::vector<double> search_ms, tags_ms;
  Received got;
  std::string error;
  for (const Worker& w : workers) {
    search_ms.insert(search_ms.end(), w.search_ms.begin(), w.search_ms.end());
    tags_ms.insert(tags_ms.end(), w.tags_ms.begin(), w.tags_ms.end());
    got.add(w.got);
    if (error.empty()) error = w.error;
  }
  std::printf(
      "{\"connections\":%zu,\"seconds\":%zu,\"search_ms\":%s,\"tags_ms\":%s,%s,\"error\":%s}\n",
      connections, seconds, latency_json(search_ms).c_str(), latency_json(tags_ms).c_str(),
      got.json_fields().c_str(), json_string(error).c_str());
  return 0;
}

}  // namespace relaycore::isolation
