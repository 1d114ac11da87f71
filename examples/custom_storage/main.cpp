// relaycore-custom-storage: a relay on a storage the host wrote itself (log_storage.cpp), seen
// through a StorageWrapper that reports each commit. It submits a signed note with
// Relay::submit, reads it back through a session REQ, then reopens the log to show the note
// survived, and prints each step.
//
//   $ relaycore-custom-storage [LOG_PATH]     (default: a log in a fresh temporary directory)
#include <stdlib.h>  // mkdtemp

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "log_storage.hpp"
#include "relaycore/keys.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage_wrapper.hpp"

using namespace relaycore;

namespace {

// A connection that keeps the frames it is sent, so main() can wait for the EOSE.
class CapturingConnection final : public Connection {
 public:
  void send(Frame frame) override {
    std::lock_guard lock(mutex_);
    frames_.push_back(frame.to_string());
    changed_.notify_all();
  }
  void close(std::string_view) override {}
  std::size_t queued_bytes() const override { return 0; }

  // The frames received once one starts with `prefix`; empty after a timeout.
  std::vector<std::string> wait_for(const std::string& prefix) {
    std::unique_lock lock(mutex_);
    bool seen = changed_.wait_for(lock, std::chrono::seconds(5), [&] {
      for (const std::string& f : frames_) {
        if (f.starts_with(prefix)) return true;
      }
      return false;
    });
    return seen ? frames_ : std::vector<std::string>();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> frames_;
};

// A StorageWrapper overrides only what it needs and forwards the rest: this one prints what each
// batch stored once the log storage has committed it.
class ReportingStorage final : public StorageWrapper {
 public:
  using StorageWrapper::StorageWrapper;

  Status write_batch(std::span<const EventPtr> events, std::vector<WriteResult>& results) override {
    Status s = StorageWrapper::write_batch(events, results);
    for (std::size_t i = 0; s && i < events.size(); ++i) {
      if (results[i].seq == 0) continue;
      std::printf("committed %s at seq %llu\n", std::string(events[i]->id_hex()).c_str(),
                  static_cast<unsigned long long>(results[i].seq));
    }
    return s;
  }
};

int fail(const std::string& what) {
  std::fprintf(stderr, "relaycore-custom-storage: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  std::string path;
  if (argc > 1) {
    path = argv[1];
  } else {
    std::string pattern = (std::filesystem::temp_directory_path() / "relaycore-log-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) return fail("cannot make a temporary directory");
    dir = pattern;
    path = dir + "/events.log";
  }

  Result<std::shared_ptr<Storage>> storage = example::open_log_storage(path);
  if (!storage) return fail(storage.error().message());
  Options options;
  options.storage = std::make_shared<ReportingStorage>(*storage);
  Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(options));
  if (!relay) return fail("cannot open the relay: " + relay.error().message());
  std::printf("relay open on %s\n", path.c_str());

  // Sign a note and submit it without any socket; submit() returns with the OK.
  Keypair keys = Keypair::generate();
  EventDraft draft;
  draft.created_at = static_cast<std::int64_t>(std::time(nullptr));
  draft.content = "hello from a storage the host wrote";
  Result<EventPtr> note = sign_event(keys, std::move(draft));
  if (!note) return fail(note.error().message());
  const std::string id((*note)->id_hex());
  OkResult ok = (*relay)->submit(*note);
  std::printf("submit %s: accepted=%s message=\"%s\"\n", id.c_str(), ok.accepted ? "true" : "false",
              ok.message.c_str());
  if (!ok.accepted) return fail("the note was refused");

  // Read it back as a client would: a session, a REQ, frames until EOSE.
  auto connection = std::make_shared<CapturingConnection>();
  std::shared_ptr<Session> session = (*relay)->open_session(connection, ClientInfo{});
  session->on_message(R"(["REQ","back",{"ids":[")" + id + R"("]}])");
  std::vector<std::string> frames = connection->wait_for(R"(["EOSE","back"])");
  bool found = false;
  for (const std::string& f : frames) {
    std::printf("received %s\n", f.c_str());
    found = found || f == R"(["EVENT","back",)" + std::string((*note)->json()) + "]";
  }
  session->on_close();
  // The drain reports what it could not finish (audit records, events for other nodes).
  if (Status s = (*relay)->shutdown(); !s) return fail("shutdown: " + s.message());
  relay.value().reset();
  if (!found) return fail("the REQ did not return the note");

  // The log is all there is on disk: reopening it replays the note.
  storage.value().reset();
  Result<std::shared_ptr<Storage>> reopened = example::open_log_storage(path);
  if (!reopened) return fail("cannot reopen the log: " + reopened.error().message());
  Result<bool> kept = (*reopened)->contains((*note)->id());
  if (!kept.is_ok() || !*kept) return fail("the note is not in the reopened log");
  std::printf("reopened %s: the note is still there\n", path.c_str());

  reopened.value().reset();
  if (!dir.empty()) std::filesystem::remove_all(dir);
  return 0;
}
