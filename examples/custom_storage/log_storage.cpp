// LogStorage: see log_storage.hpp for the file format. Only relaycore's public API is used:
// Event and Filter for matching, supersedes() for the replacement rule, parse_event() to replay.
#include "log_storage.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/hex.hpp"

namespace example {

using namespace relaycore;

namespace {

constexpr std::uint16_t kDeletionKind = 5;

// The NIP-01 result order: created_at descending, then id ascending.
using TimeKey = EventKey;

// Everything in memory; rebuilt from the log on open and after a failed write.
struct Index {
  std::map<TimeKey, StoredEvent> by_time;             // query order
  std::map<EventId, std::int64_t> created;            // id -> created_at, to find its TimeKey
  std::map<std::uint64_t, EventPtr> by_seq;           // scan_since
  std::map<std::string, EventId> slots;               // "kind:pubkey:d" -> current version
  std::set<std::pair<EventId, Pubkey>> deleted_ids;   // NIP-09 e tags: (id, author)
  std::map<std::string, std::int64_t> deleted_slots;  // NIP-09 a tags: slot -> deleted up to
  std::uint64_t last_seq = 0;                         // never reused, even after removal
};

// The replaceable or addressable slot of an event, as a NIP-09 coordinate "kind:pubkey:d".
std::optional<std::string> slot_of(const Event& e) {
  if (e.kind_class() != KindClass::kReplaceable && e.kind_class() != KindClass::kAddressable) {
    return std::nullopt;
  }
  std::string d = e.kind_class() == KindClass::kAddressable ? std::string(e.d_tag()) : "";
  return std::to_string(e.kind()) + ":" + std::string(e.pubkey_hex()) + ":" + d;
}

// The slot an `a` tag names, if it is one of `author`'s (nobody deletes another's events).
std::optional<std::string> parse_slot(std::string_view value, std::string_view author) {
  std::size_t first = value.find(':');
  std::size_t second = value.find(':', first == value.npos ? first : first + 1);
  if (second == value.npos || value.substr(first + 1, second - first - 1) != author) return {};
  unsigned kind = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + first, kind);
  if (ec != std::errc() || end != value.data() + first || kind > 65535) return {};
  switch (kind_class(kind)) {
    case KindClass::kReplaceable:
      return std::to_string(kind) + ":" + std::string(author) + ":";
    case KindClass::kAddressable:
      return std::to_string(kind) + ":" + std::string(value.substr(first + 1));
    default:
      return {};
  }
}

// What a kind 5 asks to delete: the ids of its e tags and its author's slots in its a tags.
void deletion_targets(const Event& del, std::vector<EventId>& ids,
                      std::vector<std::string>& slots) {
  for (const Tag& tag : del.tags()) {
    EventId id{};
    if (tag.size() >= 2 && tag[0] == "e" && from_hex(tag[1], id)) ids.push_back(id);
    if (tag.size() >= 2 && tag[0] == "a") {
      if (auto slot = parse_slot(tag[1], del.pubkey_hex())) slots.push_back(*slot);
    }
  }
}

bool is_expired(const Event& e, std::int64_t now) {
  return e.expiration() && *e.expiration() <= now;
}

// This storage does not implement NIP-50, so a filter with `search` matches nothing.
bool visible(const StoredEvent& s, const Filter& filter, const QueryRequest& request) {
  return s.seq <= request.max_seq && !is_expired(*s.event, request.now) && !filter.search &&
         filter.matches(*s.event);
}

class LogStorage final : public Storage {
 public:
  explicit LogStorage(std::string path) : path_(std::move(path)) {}
  ~LogStorage() override {
    if (fd_ >= 0) ::close(fd_);
  }
  LogStorage(const LogStorage&) = delete;
  LogStorage& operator=(const LogStorage&) = delete;

  // A production store would also fsync the directory after creating the log, so that the
  // file itself survives power loss; this one leaves that out.
  Status open() {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::error("cannot open " + path_ + ": " + std::strerror(errno));
    return load();
  }

  Status write_batch(std::span<const EventPtr> events, std::vector<WriteResult>& results) override {
    std::lock_guard lock(mutex_);
    results.assign(events.size(), WriteResult{});
    for (std::size_t i = 0; i < events.size(); ++i) apply(events[i], results[i]);
    Status s = commit();
    if (!s) results.assign(events.size(), WriteResult{WriteOutcome::kRejected, s, 0, {}});
    return s;
  }

  Status query(const Filter& filter, const QueryRequest& request,
               const std::function<bool(const StoredEvent&)>& visit) override {
    const std::uint32_t limit =
        std::min(filter.limit.value_or(request.max_limit), request.max_limit);
    // Copy out under the lock (shared pointers only), and visit after releasing it.
    std::vector<StoredEvent> found;
    {
      std::lock_guard lock(mutex_);
      auto it = request.after ? index_.by_time.upper_bound(*request.after) : index_.by_time.begin();
      for (; it != index_.by_time.end() && found.size() < limit; ++it) {
        if (visible(it->second, filter, request)) found.push_back(it->second);
      }
    }
    for (const StoredEvent& stored : found) {
      if (!visit(stored)) break;
    }
    return Status::ok();
  }

  Result<std::uint64_t> count(const std::vector<Filter>& filters,
                              const QueryRequest& request) override {
    std::lock_guard lock(mutex_);
    std::uint64_t n = 0;
    for (const auto& [key, stored] : index_.by_time) {
      n += std::any_of(filters.begin(), filters.end(),
                       [&](const Filter& f) { return visible(stored, f, request); });
    }
    return n;
  }

  Result<bool> contains(const EventId& id) override {
    std::lock_guard lock(mutex_);
    return index_.created.contains(id);
  }

  Result<std::uint64_t> max_seq() override {
    std::lock_guard lock(mutex_);
    return index_.last_seq;
  }

  Status scan_since(std::uint64_t after_seq,
                    const std::function<bool(const StoredEvent&)>& visit) override {
    std::vector<StoredEvent> found;
    {
      std::lock_guard lock(mutex_);
      for (auto it = index_.by_seq.upper_bound(after_seq); it != index_.by_seq.end(); ++it) {
        found.push_back(StoredEvent{it->second, it->first});
      }
    }
    for (const StoredEvent& stored : found) {
      if (!visit(stored)) break;
    }
    return Status::ok();
  }

  Result<std::uint64_t> purge_expired(std::int64_t now) override {
    std::lock_guard lock(mutex_);
    std::vector<EventId> expired;
    for (const auto& [key, stored] : index_.by_time) {
      if (is_expired(*stored.event, now)) expired.push_back(key.id);
    }
    return remove_and_commit(expired);
  }

  Result<std::uint64_t> erase(std::span<const EventId> ids) override {
    std::lock_guard lock(mutex_);
    return remove_and_commit(ids);
  }

 private:
  // NIP-01 and NIP-09 for one event of a batch. Earlier events of the batch are already in the
  // index, so replacement and deletion see them.
  void apply(const EventPtr& e, WriteResult& r) {
    if (e->kind_class() == KindClass::kEphemeral) {
      r.status = Status::invalid("ephemeral events are not stored");
      return;
    }
    if (index_.created.contains(e->id())) {
      r = {WriteOutcome::kDuplicate, Status::duplicate("already have this event"), 0, {}};
      return;
    }
    std::optional<std::string> slot = slot_of(*e);
    if (deleted(*e, slot)) {
      r = {WriteOutcome::kDeleted, Status::blocked("this event was deleted by its author"), 0, {}};
      return;
    }
    auto current = slot ? index_.slots.find(*slot) : index_.slots.end();
    if (current != index_.slots.end()) {
      const Event& old = *stored(current->second).event;
      if (supersedes(old.created_at(), old.id(), e->created_at(), e->id())) {
        r.status = Status::duplicate("have a newer version of this event");
        return;
      }
      r.removed.push_back(remove(current->second));
    }
    r.outcome = r.removed.empty() ? WriteOutcome::kStored : WriteOutcome::kReplaced;
    r.seq = insert(e, index_.last_seq + 1);
    if (e->kind() == kDeletionKind) delete_targets(*e, r.removed);
  }

  bool deleted(const Event& e, const std::optional<std::string>& slot) const {
    if (e.kind() == kDeletionKind) return false;  // deleting a deletion has no effect
    if (index_.deleted_ids.contains({e.id(), e.pubkey()})) return true;
    auto it = slot ? index_.deleted_slots.find(*slot) : index_.deleted_slots.end();
    return it != index_.deleted_slots.end() && e.created_at() <= it->second;
  }

  // A kind 5 just stored removes its author's events named by its e tags, and its author's
  // slot versions named by its a tags up to its created_at. insert() made the tombstones.
  void delete_targets(const Event& del, std::vector<RemovedEvent>& removed) {
    std::vector<EventId> ids;
    std::vector<std::string> slots;
    deletion_targets(del, ids, slots);
    for (const EventId& id : ids) {
      if (!index_.created.contains(id)) continue;
      const Event& target = *stored(id).event;
      if (target.pubkey() == del.pubkey() && target.kind() != kDeletionKind) {
        removed.push_back(remove(id));
      }
    }
    for (const std::string& slot : slots) {
      auto it = index_.slots.find(slot);
      if (it != index_.slots.end() && stored(it->second).event->created_at() <= del.created_at()) {
        removed.push_back(remove(it->second));
      }
    }
  }

  const StoredEvent& stored(const EventId& id) const {
    return index_.by_time.at(TimeKey{index_.created.at(id), id});
  }

  // The two mutations; each changes the index and, unless replaying, logs a record. A stored
  // kind 5 leaves its tombstones here, live and on replay alike.
  std::uint64_t insert(const EventPtr& e, std::uint64_t seq) {
    index_.by_time.emplace(TimeKey{e->created_at(), e->id()}, StoredEvent{e, seq});
    index_.created.emplace(e->id(), e->created_at());
    index_.by_seq.emplace(seq, e);
    if (auto slot = slot_of(*e)) index_.slots[*slot] = e->id();
    index_.last_seq = std::max(index_.last_seq, seq);
    if (e->kind() == kDeletionKind) {
      std::vector<EventId> ids;
      std::vector<std::string> slots;
      deletion_targets(*e, ids, slots);
      for (const EventId& id : ids) index_.deleted_ids.emplace(id, e->pubkey());
      for (const std::string& slot : slots) {
        std::int64_t& until = index_.deleted_slots.try_emplace(slot, e->created_at()).first->second;
        until = std::max(until, e->created_at());
      }
    }
    if (!replaying_) pending_ += "+ " + std::to_string(seq) + " " + std::string(e->json()) + "\n";
    return seq;
  }

  RemovedEvent remove(EventId id) {  // by value: callers pass references into the index
    auto node = index_.by_time.find(TimeKey{index_.created.at(id), id});
    const StoredEvent s = node->second;
    if (auto slot = slot_of(*s.event)) {
      auto it = index_.slots.find(*slot);
      if (it != index_.slots.end() && it->second == id) index_.slots.erase(it);
    }
    index_.by_seq.erase(s.seq);
    index_.by_time.erase(node);
    index_.created.erase(id);
    if (!replaying_) pending_ += "- " + to_hex(id) + "\n";
    return RemovedEvent{id, s.event->kind(), s.seq};
  }

  Result<std::uint64_t> remove_and_commit(std::span<const EventId> ids) {
    std::uint64_t n = 0;
    for (const EventId& id : ids) {
      if (!index_.created.contains(id)) continue;
      remove(id);
      ++n;
    }
    if (Status s = commit(); !s) return s;
    return n;
  }

  // Appends the batch's records and its "." line, then fsyncs: only then is the batch
  // committed, so an OK sent after it survives power loss. On failure the file and the index go
  // back to the last commit. Readers wait on the mutex meanwhile and never see a batch that is
  // not committed.
  Status commit() {
    if (pending_.empty()) return Status::ok();
    std::string batch = std::exchange(pending_, std::string()) + ".\n";
    int error = 0;
    for (std::string_view rest = batch; !rest.empty() && error == 0;) {
      ssize_t n = ::write(fd_, rest.data(), rest.size());
      if (n >= 0) rest.remove_prefix(static_cast<std::size_t>(n));
      if (n < 0 && errno != EINTR) error = errno;
    }
    if (error == 0 && ::fdatasync(fd_) != 0) error = errno;
    if (error == 0) {
      committed_bytes_ += batch.size();
      return Status::ok();
    }
    if (::ftruncate(fd_, static_cast<off_t>(committed_bytes_)) != 0 || !load()) {
      return Status::error("log storage: write failed and the log could not be rolled back");
    }
    return Status::error(std::string("log storage: write failed: ") + std::strerror(error));
  }

  // Replays the log up to its last "." line into a fresh index, and cuts off a torn batch.
  Status load() {
    std::string text;
    char chunk[1 << 16];
    for (ssize_t n; (n = ::pread(fd_, chunk, sizeof(chunk), static_cast<off_t>(text.size())));) {
      if (n < 0 && errno != EINTR) return Status::error("cannot read " + path_);
      if (n > 0) text.append(chunk, static_cast<std::size_t>(n));
    }
    std::size_t end = text.rfind("\n.\n");
    end = end == std::string::npos ? 0 : end + 3;
    index_ = Index();
    replaying_ = true;
    Status s;
    for (std::size_t pos = 0; pos < end && s;) {
      std::size_t eol = text.find('\n', pos);
      s = replay(std::string_view(text).substr(pos, eol - pos));
      pos = eol + 1;
    }
    replaying_ = false;
    if (!s) return Status::error("log storage: " + path_ + " is corrupt: " + s.message());
    if (end < text.size() && ::ftruncate(fd_, static_cast<off_t>(end)) != 0) {
      return Status::error("log storage: cannot cut the torn batch off " + path_);
    }
    committed_bytes_ = end;
    return Status::ok();
  }

  Status replay(std::string_view line) {
    EventId id{};
    std::uint64_t seq = 0;
    const std::size_t space = line.find(' ', 2);
    if (line == ".") return Status::ok();
    if (line.starts_with("- ") && from_hex(line.substr(2), id) && index_.created.contains(id)) {
      remove(id);
      return Status::ok();
    }
    if (line.starts_with("+ ") && space != line.npos) {
      auto [end, ec] = std::from_chars(line.data() + 2, line.data() + space, seq);
      // The log holds only events relaycore accepted, under whatever limits the host set.
      Limits any;
      any.max_event_bytes = any.max_content_bytes = any.max_tag_value_bytes = SIZE_MAX;
      any.max_message_bytes = any.max_event_tags = any.max_tag_strings = SIZE_MAX;
      Result<EventPtr> e = parse_event(line.substr(space + 1), any);
      if (ec == std::errc() && end == line.data() + space && seq > 0 && e) {
        insert(*e, seq);
        return Status::ok();
      }
    }
    return Status::invalid("bad record \"" + std::string(line.substr(0, 80)) + "\"");
  }

  const std::string path_;
  int fd_ = -1;
  // One mutex guards everything: simple, and fair to the writer. Queries copy shared pointers
  // out under it and run the host's visitor after releasing it.
  std::mutex mutex_;
  Index index_;
  std::string pending_;  // records of the batch being written
  std::size_t committed_bytes_ = 0;
  bool replaying_ = false;
};

}  // namespace

Result<std::shared_ptr<Storage>> open_log_storage(const std::string& path) {
  auto storage = std::make_shared<LogStorage>(path);
  if (Status s = storage->open(); !s) return s;
  return std::shared_ptr<Storage>(std::move(storage));
}

}  // namespace example
