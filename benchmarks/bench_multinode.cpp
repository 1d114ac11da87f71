// relaycore-bench-multinode: two Relay instances in one process sharing one PostgreSQL database
// and one Redis (both started here, with the tests' throwaway-server fixtures), as two nodes
// behind a load balancer would. It measures:
//   - first-delivery latency, submit on node A to the EVENT frame at a live subscriber on A
//     (same node) and on B (across Redis), p50 and p99;
//   - ingest throughput (submit_async, all acks awaited) with one node, and with two nodes
//     sharing the work, on a fresh database each.
//
//   relaycore-bench-multinode [--latency-events N] [--events N]
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_corpus.hpp"
#include "relaycore/postgres.hpp"
#include "relaycore/redis.hpp"
#include "relaycore/relay.hpp"
#include "servers/postgres_server.hpp"
#include "servers/redis_server.hpp"

namespace {

using relaycore::EventPtr;
using Clock = std::chrono::steady_clock;

// Records when each event id first arrives in an EVENT frame.
class ArrivalConnection : public relaycore::Connection {
 public:
  void send(relaycore::Frame frame) override {
    const Clock::time_point t = Clock::now();
    const std::string s = frame.to_string();
    const std::size_t at = s.find("\"id\":\"");
    if (s.rfind("[\"EVENT\"", 0) != 0 || at == std::string::npos) return;
    std::lock_guard lock(mu_);
    arrivals_.emplace(s.substr(at + 6, 64), t);
    cv_.notify_all();
  }
  void close(std::string_view) override {}
  std::size_t queued_bytes() const override { return 0; }

  // When `id` arrived; waits up to 5 s; nullopt if it never did.
  std::optional<Clock::time_point> wait(const std::string& id) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return arrivals_.count(id) != 0; })) {
      return std::nullopt;
    }
    return arrivals_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Clock::time_point> arrivals_;
};

struct Flags {
  std::size_t latency_events = 2000;
  std::size_t events = 20000;
};

std::unique_ptr<relaycore::Relay> open_node(const std::string& conninfo,
                                            const std::string& redis_url, const char* name) {
  relaycore::Options o;
  relaycore::PostgresOptions pg;
  pg.conninfo = conninfo;
  auto storage = relaycore::new_postgres_storage(pg);
  if (!storage) bench::die(std::string("postgres: ") + storage.error().message());
  o.storage = std::move(storage).value();
  relaycore::RedisOptions redis;
  redis.url = redis_url;
  auto pubsub = relaycore::new_redis_pubsub(redis);
  if (!pubsub) bench::die(std::string("redis: ") + pubsub.error().message());
  o.pubsub = std::move(pubsub).value();
  o.node_id = name;
  auto relay = relaycore::Relay::open(std::move(o));
  if (!relay) bench::die(std::string("open: ") + relay.error().message());
  return std::move(relay).value();
}

// Submits every event (round-robin over `nodes`) without waiting, then waits for every ack;
// returns acked events per second.
double ingest(const std::vector<relaycore::Relay*>& nodes, const std::vector<EventPtr>& events) {
  std::atomic<std::size_t> done{0}, accepted{0};
  std::mutex mu;
  std::condition_variable cv;
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> producers;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    producers.emplace_back([&, n] {
      for (std::size_t i = n; i < events.size(); i += nodes.size()) {
        nodes[n]->submit_async(events[i], [&](const relaycore::OkResult& r) {
          if (r.accepted) accepted.fetch_add(1);
          if (done.fetch_add(1) + 1 == events.size()) {
            std::lock_guard lock(mu);
            cv.notify_all();
          }
        });
      }
    });
  }
  for (std::thread& t : producers) t.join();
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done.load() == events.size(); });
  const double seconds = bench::seconds_since(start);
  if (accepted.load() != events.size()) bench::die("some events were not accepted");
  return static_cast<double>(events.size()) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--latency-events") {
      flags.latency_events = std::stoul(bench::flag_value(argc, argv, i));
    } else if (arg == "--events") {
      flags.events = std::stoul(bench::flag_value(argc, argv, i));
    } else {
      bench::die("usage: relaycore-bench-multinode [--latency-events N] [--events N]");
    }
  }
  relaycore::test_servers::PostgresServer pg;
  if (!pg.start()) bench::die("cannot start PostgreSQL: " + pg.error());
  relaycore::test_servers::RedisServer redis;
  if (!redis.running()) bench::die("cannot start redis-server");

  const bench::Corpus lat = bench::build_corpus({"latency", flags.latency_events, 200, 0, 3}, 1);
  const bench::Corpus load = bench::build_corpus({"ingest", flags.events * 2, 200, 0, 3}, 2);

  // Latency: one event at a time, so queues are empty and each sample is one event's path.
  {
    auto db = pg.create_database();
    if (!db) bench::die("create database: " + pg.error());
    auto a = open_node(pg.conninfo(*db), redis.url(), "node-a");
    auto b = open_node(pg.conninfo(*db), redis.url(), "node-b");
    auto same = std::make_shared<ArrivalConnection>();
    auto cross = std::make_shared<ArrivalConnection>();
    auto sa = a->open_session(same, {});
    auto sb = b->open_session(cross, {});
    sa->on_message(R"(["REQ","l",{"kinds":[1],"limit":0}])");
    sb->on_message(R"(["REQ","l",{"kinds":[1],"limit":0}])");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::vector<double> same_us, cross_us;
    std::size_t lost = 0;
    for (const EventPtr& e : lat.events) {
      const Clock::time_point start = Clock::now();
      if (!a->submit(e).accepted) bench::die("latency event refused");
      const std::string id(e->id_hex());
      auto t_same = same->wait(id);
      auto t_cross = cross->wait(id);
      if (t_same)
        same_us.push_back(std::chrono::duration<double, std::micro>(*t_same - start).count());
      if (t_cross) {
        cross_us.push_back(std::chrono::duration<double, std::micro>(*t_cross - start).count());
      } else {
        ++lost;
      }
    }
    std::printf("first delivery after submit on A, %zu events, one at a time:\n",
                lat.events.size());
    std::printf("  same node (A -> A):   p50 %8.0f us  p99 %8.0f us\n",
                bench::quantile(same_us, 0.5), bench::quantile(same_us, 0.99));
    std::printf("  cross node (A -> B):  p50 %8.0f us  p99 %8.0f us  (%zu not delivered)\n",
                bench::quantile(cross_us, 0.5), bench::quantile(cross_us, 0.99), lost);
    bench::print_result("multinode_same_p50_us", bench::quantile(same_us, 0.5));
    bench::print_result("multinode_same_p99_us", bench::quantile(same_us, 0.99));
    bench::print_result("multinode_cross_p50_us", bench::quantile(cross_us, 0.5));
    bench::print_result("multinode_cross_p99_us", bench::quantile(cross_us, 0.99));
    bench::shutdown_or_die(*a);
    bench::shutdown_or_die(*b);
  }

  // Throughput: the same number of events into one node, then into two nodes.
  const std::vector<EventPtr> first(load.events.begin(), load.events.begin() + flags.events);
  const std::vector<EventPtr> second(load.events.begin() + flags.events, load.events.end());
  double one = 0, two = 0;
  {
    auto db = pg.create_database();
    if (!db) bench::die("create database: " + pg.error());
    auto a = open_node(pg.conninfo(*db), redis.url(), "node-a");
    one = ingest({a.get()}, first);
    bench::shutdown_or_die(*a);
  }
  {
    auto db = pg.create_database();
    if (!db) bench::die("create database: " + pg.error());
    auto a = open_node(pg.conninfo(*db), redis.url(), "node-a");
    auto b = open_node(pg.conninfo(*db), redis.url(), "node-b");
    two = ingest({a.get(), b.get()}, second);
    bench::shutdown_or_die(*a);
    bench::shutdown_or_die(*b);
  }
  std::printf("ingest into PostgreSQL, %zu events, all acks awaited:\n", flags.events);
  std::printf("  one node:   %8.0f events/s\n", one);
  std::printf("  two nodes:  %8.0f events/s  (%.2fx)\n", two, two / one);
  bench::print_result("multinode_ingest_one_node_eps", one);
  bench::print_result("multinode_ingest_two_nodes_eps", two);
  return 0;
}
