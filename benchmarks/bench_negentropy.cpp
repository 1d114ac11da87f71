// relaycore-bench-negentropy: NIP-77 between two SQLite stores of 1M events that differ by
// 1,000. The relay serves store A; a client holding store B reads its own keys, then runs the
// negentropy initiator against a session of the relay, NEG-OPEN and NEG-MSG frames going
// through the session as they would from a WebSocket. Reports the time to reconcile, the bytes
// exchanged against sending every id (32 bytes each) and the round trips, and checks that the
// client learned exactly the ids each side lacks.
//
// The stores are built once (unsigned events written straight to storage: negentropy reads
// only ids and timestamps) and kept in --dir for later runs.
//
//   relaycore-bench-negentropy [--events N] [--diff D] [--dir DIR] [--reload]
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>

#include "bench_corpus.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/message.hpp"
#include "relaycore/negentropy.hpp"
#include "relaycore/relay.hpp"

using namespace relaycore;
namespace fs = std::filesystem;

namespace {

struct Flags {
  std::size_t events = 1000000;
  std::size_t diff = 1000;
  std::string dir = ".";
  bool reload = false;
};

// Frames the relay sends to the client, handed over one at a time.
class Inbox final : public Connection {
 public:
  void send(Frame frame) override {
    std::lock_guard lock(mu_);
    frames_.push_back(frame.to_string());
    cv_.notify_all();
  }
  void close(std::string_view reason) override {
    bench::die("relay closed: " + std::string(reason));
  }
  std::size_t queued_bytes() const override { return 0; }

  std::string next() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(60), [&] { return !frames_.empty(); })) {
      bench::die("no answer from the relay within 60 s");
    }
    std::string f = std::move(frames_.front());
    frames_.pop_front();
    return f;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> frames_;
};

EventPtr fake_event(std::mt19937_64& rng, const std::vector<Pubkey>& authors, std::size_t i) {
  EventFields f;
  for (auto& b : f.id) b = static_cast<std::uint8_t>(rng());
  f.pubkey = authors[rng() % authors.size()];
  // A year of history: about one event every 30 s, some seconds with several.
  f.created_at = 1700000000 + static_cast<std::int64_t>(rng() % (365 * 86400));
  f.kind = 1;
  f.content = "negentropy bench " + std::to_string(i);
  Result<EventPtr> e = Event::create(std::move(f));
  if (!e) bench::die("event: " + e.error().message());
  return std::move(e).value();
}

std::shared_ptr<Storage> open_store(const std::string& path) {
  SqliteOptions o;
  o.path = path;
  o.synchronous = SqliteSync::kNormal;
  Result<std::shared_ptr<Storage>> s = new_sqlite_storage(o);
  if (!s) bench::die("open " + path + ": " + s.error().message());
  return std::move(s).value();
}

std::uint64_t stored(Storage& s) {
  Result<std::uint64_t> n = s.count({Filter()}, QueryRequest());
  if (!n) bench::die("count: " + n.error().message());
  return *n;
}

void write_all(Storage& s, const std::vector<EventPtr>& events) {
  std::vector<WriteResult> results;
  for (std::size_t i = 0; i < events.size(); i += 10000) {
    const std::size_t n = std::min<std::size_t>(10000, events.size() - i);
    if (Status st = s.write_batch(std::span(events).subspan(i, n), results); !st) {
      bench::die("write: " + st.message());
    }
  }
}

void remove_db(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}

// Builds (or reuses) A with `events` events, and B as A less diff/2 of them plus diff/2 of its
// own. Returns the ids only A has and only B has.
void prepare(const Flags& flags, const std::string& a_path, const std::string& b_path,
             std::set<EventId>& only_a, std::set<EventId>& only_b) {
  std::mt19937_64 rng(77);
  std::vector<Pubkey> authors(1000);
  for (auto& pk : authors) {
    for (auto& b : pk) b = static_cast<std::uint8_t>(rng());
  }
  std::vector<EventPtr> base;
  base.reserve(flags.events);
  for (std::size_t i = 0; i < flags.events; ++i) base.push_back(fake_event(rng, authors, i));
  std::vector<EventPtr> extra;
  for (std::size_t i = 0; i < flags.diff / 2; ++i) {
    extra.push_back(fake_event(rng, authors, flags.events + i));
  }
  const std::size_t step = flags.events / (flags.diff / 2);
  std::vector<EventId> erased;
  for (std::size_t i = 0; i < flags.diff / 2; ++i) erased.push_back(base[i * step + 3]->id());
  only_a.insert(erased.begin(), erased.end());
  for (const EventPtr& e : extra) only_b.insert(e->id());

  bool ready = !flags.reload && fs::exists(a_path) && fs::exists(b_path);
  if (ready) {
    ready =
        stored(*open_store(a_path)) == flags.events && stored(*open_store(b_path)) == flags.events;
  }
  if (ready) return;
  std::printf("building the stores in %s (once)...\n", flags.dir.c_str());
  std::fflush(stdout);
  remove_db(a_path);
  remove_db(b_path);
  const auto t = bench::Clock::now();
  {
    auto a = open_store(a_path);
    write_all(*a, base);
  }
  fs::copy_file(a_path, b_path);
  {
    auto b = open_store(b_path);
    auto gone = b->erase(erased);
    if (!gone || gone->size() != erased.size()) bench::die("erase failed");
    write_all(*b, extra);
  }
  std::printf("built in %.1f s\n", bench::seconds_since(t));
}

std::string hex_of(std::string_view bytes) {
  std::string out(bytes.size() * 2, '\0');
  hex_encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), out.data());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--events") {
      flags.events = std::stoul(bench::flag_value(argc, argv, i));
    } else if (arg == "--diff") {
      flags.diff = std::stoul(bench::flag_value(argc, argv, i));
    } else if (arg == "--dir") {
      flags.dir = bench::flag_value(argc, argv, i);
    } else if (arg == "--reload") {
      flags.reload = true;
    } else {
      bench::die("unknown flag " + std::string(arg) +
                 " (flags: --events N --diff D --dir DIR --reload)");
    }
  }
  if (flags.diff < 2 || flags.diff / 2 > flags.events) bench::die("--diff wants 2 to 2 * events");
  const std::string a_path = (fs::path(flags.dir) / "negentropy-a.db").string();
  const std::string b_path = (fs::path(flags.dir) / "negentropy-b.db").string();
  std::set<EventId> only_a, only_b;
  prepare(flags, a_path, b_path, only_a, only_b);

  Options options;
  options.storage = open_store(a_path);
  options.verify_threads = 1;
  options.negentropy.max_records = static_cast<std::uint32_t>(flags.events);
  std::unique_ptr<Relay> relay = Relay::open(std::move(options)).value();
  auto inbox = std::make_shared<Inbox>();
  std::shared_ptr<Session> session = relay->open_session(inbox, ClientInfo{"127.0.0.1", {}});
  auto client_store = open_store(b_path);

  const auto start = bench::Clock::now();
  std::vector<NegentropyItem> items;
  QueryRequest all;
  all.max_limit = UINT32_MAX;
  all.now = 1;
  Status read = client_store->scan_keys(Filter(), all, [&](const EventKey& k) {
    items.push_back({static_cast<std::uint64_t>(k.created_at), k.id});
    return true;
  });
  if (!read) bench::die("client keys: " + read.message());
  Negentropy client(make_negentropy_set(std::move(items)));
  const double client_read = bench::seconds_since(start);

  std::vector<EventId> have, need;
  std::size_t up = 0, down = 0, frame_bytes = 0, rounds = 0;
  std::string msg = client.initiate();
  std::string frame = "[\"NEG-OPEN\",\"b\",{},\"" + hex_of(msg) + "\"]";
  double first_reply = 0;
  while (!msg.empty()) {
    up += msg.size();
    frame_bytes += frame.size();
    session->on_message(frame);
    std::string reply = inbox->next();
    if (rounds == 0) first_reply = bench::seconds_since(start);
    ++rounds;
    frame_bytes += reply.size();
    const std::string head = "[\"NEG-MSG\",\"b\",\"";
    if (reply.rfind(head, 0) != 0) bench::die("unexpected answer: " + reply.substr(0, 200));
    std::string_view hex =
        std::string_view(reply).substr(head.size(), reply.size() - head.size() - 2);
    std::string bytes(hex.size() / 2, '\0');
    if (!hex_decode(hex, reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size())) {
      bench::die("bad hex from the relay");
    }
    down += bytes.size();
    Result<std::string> next = client.reconcile(bytes, have, need);
    if (!next) bench::die("reconcile: " + next.error().message());
    msg = std::move(next).value();
    frame = "[\"NEG-MSG\",\"b\",\"" + hex_of(msg) + "\"]";
  }
  const double total = bench::seconds_since(start);
  session->on_message("[\"NEG-CLOSE\",\"b\"]");

  if (std::set<EventId>(need.begin(), need.end()) != only_a || need.size() != only_a.size() ||
      std::set<EventId>(have.begin(), have.end()) != only_b || have.size() != only_b.size()) {
    bench::die("the sync did not find exactly the differences");
  }
  const double id_list = 32.0 * static_cast<double>(flags.events);
  const double share = 100.0 * static_cast<double>(up + down) / id_list;
  std::printf(
      "\nNIP-77: %zu events per store, %zu differences (%zu only on the relay, %zu only "
      "on the client)\n",
      flags.events, flags.diff, only_a.size(), only_b.size());
  std::printf("  reconcile, total           %8.2f s\n", total);
  std::printf("    client reads its keys    %8.2f s\n", client_read);
  std::printf("    first relay answer       %8.2f s (the relay reads its keys)\n", first_reply);
  std::printf("  round trips                %8zu\n", rounds);
  std::printf("  negentropy bytes, up       %8zu\n", up);
  std::printf("  negentropy bytes, down     %8zu\n", down);
  std::printf("  negentropy bytes, total    %8zu  (%.2f%% of %.0f bytes of ids)\n", up + down,
              share, id_list);
  std::printf("  NEG-* frames (hex), total  %8zu\n", frame_bytes);
  std::printf("  learned: need %zu, have %zu (exactly the differences)\n", need.size(),
              have.size());
  bench::print_result("negentropy_seconds", total);
  bench::print_result("negentropy_bytes_percent", share);
  bench::print_result("negentropy_round_trips", static_cast<double>(rounds));
  session->on_close();
  bench::shutdown_or_die(*relay);
  return 0;
}
