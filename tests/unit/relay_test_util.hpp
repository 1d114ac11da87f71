// Test doubles for the relay tests: a Connection that records frames, Storage/AuditSink
// wrappers that record what reached them, a PubSub that fails on cue, and a Logger that keeps
// every line.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "relaycore/audit.hpp"
#include "relaycore/connection.hpp"
#include "relaycore/logger.hpp"
#include "relaycore/pubsub.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"
#include "relaycore/storage_wrapper.hpp"

namespace relaycore::test {

using namespace std::chrono_literals;

// Records every frame; can pretend to be a slow reader (reports queued bytes), a reader that
// has stopped (every frame stays queued until read_all()) or a transport stuck in send() (while
// a HeldSends is alive).
class RecordingConnection : public Connection {
 public:
  void send(Frame frame) override {
    if (stalled.load()) fake_queued.fetch_add(frame.size());
    std::unique_lock lock(mu_);
    if (holding_) {
      ++held_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !holding_; });
      --held_;
    }
    if (!frame.parts()[1].empty()) event_json_ptrs_.push_back(frame.parts()[1].data());
    frames_.push_back(frame.to_string());
    cv_.notify_all();
  }
  // Notes which frames came in one batch, then sends them one by one.
  void send_batch(std::span<Frame> frames) override {
    {
      std::lock_guard lock(mu_);
      std::vector<std::string> batch;
      for (const Frame& frame : frames) batch.push_back(frame.to_string());
      batches_.push_back(std::move(batch));
    }
    for (Frame& frame : frames) send(std::move(frame));
  }
  void close(std::string_view reason) override {
    std::lock_guard lock(mu_);
    closed_ = true;
    close_reason_ = std::string(reason);
    cv_.notify_all();
  }
  std::size_t queued_bytes() const override { return fake_queued.load(); }

  // The peer reads everything queued; the session is told, as a transport tells it.
  void read_all(Session& session) {
    fake_queued = 0;
    session.on_drain();
  }
  // Every send() blocks until the returned guard is gone: a transport stuck in a write. The
  // guard must be destroyed before the relay, which would otherwise wait on the stuck thread.
  class HeldSends {
   public:
    explicit HeldSends(RecordingConnection& conn) : conn_(conn) { conn_.set_holding(true); }
    ~HeldSends() { conn_.set_holding(false); }
    HeldSends(const HeldSends&) = delete;
    HeldSends& operator=(const HeldSends&) = delete;

   private:
    RecordingConnection& conn_;
  };
  [[nodiscard]] std::unique_ptr<HeldSends> hold_sends() {
    return std::make_unique<HeldSends>(*this);
  }
  // Waits until a thread is blocked in send() by hold_sends(); false on timeout.
  bool wait_send_held(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return held_ > 0; });
  }

  // Waits until the connection is closed; false on timeout.
  bool wait_closed(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return closed_; });
  }

  std::vector<std::string> frames() const {
    std::lock_guard lock(mu_);
    return frames_;
  }
  // The frames of each send_batch() call, in order.
  std::vector<std::vector<std::string>> batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  std::vector<const char*> event_json_ptrs() const {
    std::lock_guard lock(mu_);
    return event_json_ptrs_;
  }
  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }
  std::string close_reason() const {
    std::lock_guard lock(mu_);
    return close_reason_;
  }
  // Waits until `pred(frames)` holds; false on timeout.
  bool wait_until(const std::function<bool(const std::vector<std::string>&)>& pred,
                  std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(frames_); });
  }
  // Waits for at least n frames starting with `prefix`.
  bool wait_count(std::string_view prefix, std::size_t n,
                  std::chrono::milliseconds timeout = 5000ms) {
    return wait_until([&](const std::vector<std::string>& fs) { return count(fs, prefix) >= n; },
                      timeout);
  }
  static std::size_t count(const std::vector<std::string>& fs, std::string_view prefix) {
    std::size_t n = 0;
    for (const std::string& f : fs) n += f.rfind(prefix, 0) == 0;
    return n;
  }
  std::size_t count(std::string_view prefix) const { return count(frames(), prefix); }

  // The frame that delivers `event` to subscription `sub_id`.
  static std::string event_frame(std::string_view sub_id, const Event& event) {
    return "[\"EVENT\",\"" + std::string(sub_id) + "\"," + std::string(event.json()) + "]";
  }
  // Position of the first frame equal to `frame`, or SIZE_MAX.
  static std::size_t index_of(const std::vector<std::string>& fs, std::string_view frame) {
    auto it = std::find(fs.begin(), fs.end(), frame);
    return it == fs.end() ? SIZE_MAX : static_cast<std::size_t>(it - fs.begin());
  }
  // Waits until a frame equal to `frame` has been sent; false on timeout.
  bool wait_frame(const std::string& frame, std::chrono::milliseconds timeout = 5000ms) {
    return wait_until(
        [&](const std::vector<std::string>& fs) { return index_of(fs, frame) != SIZE_MAX; },
        timeout);
  }
  // Waits until `event` has been delivered to subscription `sub_id`; false on timeout.
  bool wait_event(std::string_view sub_id, const Event& event,
                  std::chrono::milliseconds timeout = 5000ms) {
    return wait_frame(event_frame(sub_id, event), timeout);
  }

  std::atomic<std::size_t> fake_queued{0};
  std::atomic<bool> stalled{false};

 private:
  void set_holding(bool holding) {
    std::lock_guard lock(mu_);
    holding_ = holding;
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool holding_ = false;
  int held_ = 0;  // threads blocked in send() by holding_
  std::vector<std::string> frames_;
  std::vector<std::vector<std::string>> batches_;
  std::vector<const char*> event_json_ptrs_;
  bool closed_ = false;
  std::string close_reason_;
};

// Sends REQ `sub_id` and waits until the subscription is live; false on timeout or without an
// EOSE. A session runs its queries one at a time, in order, so a COUNT sent after the REQ is
// answered only once the REQ's job has finished, going live included. From then on the
// subscription's events go out as they are dispatched, in commit order, not from a catch-up
// buffer at some later point.
inline bool req_live(Session& session, RecordingConnection& conn, std::string_view sub_id,
                     std::string_view filter) {
  const std::string id(sub_id);
  const std::string count_head = "[\"COUNT\",\"live:" + id + "\"";
  const std::size_t answered = conn.count(count_head);
  session.on_message("[\"REQ\",\"" + id + "\"," + std::string(filter) + "]");
  session.on_message("[\"COUNT\",\"live:" + id + "\"," + std::string(filter) + "]");
  return conn.wait_count(count_head, answered + 1) && conn.count("[\"EOSE\",\"" + id + "\"]") > 0;
}

// Passes everything to a real storage and remembers every event write_batch was given.
class RecordingStorage : public StorageWrapper {
 public:
  explicit RecordingStorage(std::shared_ptr<Storage> inner) : StorageWrapper(std::move(inner)) {}

  Status write_batch(std::span<const EventPtr> events, std::vector<WriteResult>& results) override {
    {
      std::lock_guard lock(mu_);
      for (const EventPtr& e : events) written_.push_back(e);
      ++batches_;
    }
    if (fail_writes.load()) {
      results.clear();
      return Status::error("disk on fire at /var/lib/secret/path");
    }
    return StorageWrapper::write_batch(events, results);
  }

  std::vector<EventPtr> written() const {
    std::lock_guard lock(mu_);
    return written_;
  }
  bool was_written(const EventId& id) const {
    std::lock_guard lock(mu_);
    for (const EventPtr& e : written_) {
      if (e->id() == id) return true;
    }
    return false;
  }

  std::atomic<bool> fail_writes{false};

 private:
  mutable std::mutex mu_;
  std::vector<EventPtr> written_;
  std::size_t batches_ = 0;
};

// An audit sink that records, and can be held shut to act as a full queue.
class GatedAudit : public AuditSink {
 public:
  Status enqueue(std::vector<AuditRecord> records) override {
    std::unique_lock lock(mu_);
    if (!open_) {
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --blocked_;
    }
    for (AuditRecord& r : records) records_.push_back(r);
    return Status::ok();
  }
  // Waits until a writer is blocked in enqueue() on the shut gate; false on timeout. The writer
  // then has committed a batch and stopped before acking it or fanning it out.
  bool wait_blocked(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return blocked_ > 0; });
  }
  Result<std::uint64_t> last_event_seq() override { return std::uint64_t{0}; }
  Status close() override {
    set_open(true);
    return Status::ok();
  }
  void set_open(bool open) {
    std::lock_guard lock(mu_);
    open_ = open;
    cv_.notify_all();
  }
  std::vector<AuditRecord> records() const {
    std::lock_guard lock(mu_);
    return records_;
  }
  bool has_record_for(const EventId& id) const {
    std::lock_guard lock(mu_);
    for (const AuditRecord& r : records_) {
      if (r.event_id == id) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int blocked_ = 0;  // writers waiting in enqueue()
  std::vector<AuditRecord> records_;
};

// Keeps every line relaycore logs.
class CapturingLogger : public Logger {
 public:
  struct Line {
    LogLevel level;
    std::string text;
  };

  void log(LogLevel level, std::string_view message) override {
    std::lock_guard lock(mu_);
    lines_.push_back({level, std::string(message)});
  }

  std::vector<Line> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }
  // The lines that contain `needle`.
  std::vector<Line> lines_with(std::string_view needle) const {
    std::vector<Line> out;
    for (Line& l : lines()) {
      if (l.text.find(needle) != std::string::npos) out.push_back(std::move(l));
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Line> lines_;
};

// A PubSub whose publish() waits while the gate is shut and then fails, as a node cut off from
// the others does; publish_calls() tells a test that dispatch has reached it.
class FailingPubSub : public PubSub {
 public:
  Status publish(const EventPtr& /*event*/, const std::string& /*origin*/) override {
    std::unique_lock lock(mu_);
    ++calls_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    return Status::error("pubsub: the broker is unreachable");
  }
  Status subscribe(Handler /*handler*/) override { return Status::ok(); }
  void close() override {}

  void set_open(bool open) {
    std::lock_guard lock(mu_);
    open_ = open;
    cv_.notify_all();
  }
  // Waits until publish() has been called at least n times; false on timeout.
  bool wait_calls(std::size_t n, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return calls_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  std::size_t calls_ = 0;
};

// The OK of an event handed to Relay::submit_async, waited for on the test's thread. Lives
// until its OK has come.
class PendingOk {
 public:
  PendingOk(Relay& relay, EventPtr event) {
    relay.submit_async(std::move(event), [this](const OkResult& ok) {
      std::lock_guard lock(mu_);
      answer_ = ok;
      cv_.notify_all();
    });
  }

  // The OK, or nothing if it has not come within `timeout`.
  std::optional<OkResult> wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return answer_.has_value(); });
    return answer_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<OkResult> answer_;
};

// A relay on memory storage with one session on a RecordingConnection, as a client sees it.
// `tweak` adjusts the options before the relay opens.
struct SessionFixture {
  std::unique_ptr<Relay> relay;
  std::shared_ptr<RecordingConnection> conn = std::make_shared<RecordingConnection>();
  std::shared_ptr<Session> session;

  explicit SessionFixture(std::function<void(Options&)> tweak = nullptr,
                          std::size_t verify_threads = 2) {
    Options o;
    o.storage = new_memory_storage();
    o.verify_threads = verify_threads;
    if (tweak) tweak(o);
    relay = Relay::open(std::move(o)).value();
    session = relay->open_session(conn, ClientInfo{"127.0.0.1", {}});
  }
};

// The EVENT message that publishes `e`.
inline std::string event_frame(const EventPtr& e) {
  return "[\"EVENT\"," + std::string(e->json()) + "]";
}

// A relay over recording memory storage and a gated audit sink, and sessions on it.
struct Harness {
  std::shared_ptr<RecordingStorage> storage =
      std::make_shared<RecordingStorage>(new_memory_storage());
  std::shared_ptr<GatedAudit> audit = std::make_shared<GatedAudit>();
  std::unique_ptr<Relay> relay;

  explicit Harness(DispatchMode mode = DispatchMode::kDeferred,
                   std::function<void(Options&)> tweak = nullptr) {
    Options o;
    o.storage = storage;
    o.audit = audit;
    o.dispatch = mode;
    o.verify_threads = 2;
    if (tweak) tweak(o);
    relay = Relay::open(std::move(o)).value();
  }

  struct Client {
    std::shared_ptr<RecordingConnection> conn = std::make_shared<RecordingConnection>();
    std::shared_ptr<Session> session;
  };
  Client connect() {
    Client c;
    c.session = relay->open_session(c.conn, ClientInfo{});
    return c;
  }
};

}  // namespace relaycore::test
