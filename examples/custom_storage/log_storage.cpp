// LogStorage: see log_storage.hpp for the file format. Only relaycore's public API is used:
// Event and Filter for matching, the storage rules (relaycore/storage_rules.hpp) for NIP-01
// replacement and NIP-09 deletion, parse_event() to replay.
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
#include <string_view>
#include <utility>
#include <vector>

#include "relaycore/event.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/storage_rules.hpp"

namespace example {

using namespace relaycore;

namespace {

// The NIP-01 result order: created_at descending, then id ascending.
using TimeKey = EventKey;

// Everything in memory; rebuilt from the log on open and after a failed write.
struct Index {
  std::map<TimeKey, StoredEvent> by_time;            // query order
  std::map<EventId, std::int64_t> created;           // id -> created_at, to find its TimeKey
  std::map<std::uint64_t, EventPtr> by_seq;          // scan_since
  std::map<Address, EventId> slots;                  // the current version of each slot
  std::set<std::pair<EventId, Pubkey>> deleted_ids;  // NIP-09 e tags: (id, author)
  std::map<Address, std::int64_t> deleted_slots;     // NIP-09 a tags: slot -> deleted up to
  std::uint64_t last_seq = 0;                        // never reused, even after removal
};

bool is_expired(const Event& e, std::int64_t now) {
  return e.expiration() && *e.expiration() <= now;
}

// This storage does not implement NIP-50, so a filter with `search` matches nothing.
bool visible(const StoredEvent& s, const Filter& filter, const QueryRequest& request) {
  return s.seq <= request.max_seq && !is_expired(*s.event, request.now) && !filter.search &&
         filter.matches(*s.event);
}

// A d tag may hold any text, spaces and newlines included, so the log keeps it in hex.
std::string hex_of(std::string_view bytes) {
  std::string out(2 * bytes.size(), '\0');
  hex_encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), out.data());
  return out;
}

// Splits off the text up to the next space.
std::string_view next_field(std::string_view& rest) {
  const std::size_t space = std::min(rest.find(' '), rest.size());
  std::string_view field = rest.substr(0, space);
  rest.remove_prefix(std::min(space + 1, rest.size()));
  return field;
}

template <typename Int>
bool parse_int(std::string_view text, Int& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

class LogStorage final : public Storage, private WriteTarget {
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
    // The rules fail only when the target does, and this one does not.
    for (std::size_t i = 0; i < events.size(); ++i) (void)apply_event(*this, events[i], results[i]);
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

  Result<std::vector<RemovedEvent>> purge_expired(std::int64_t now) override {
    std::lock_guard lock(mutex_);
    std::vector<RemovedEvent> expired;
    for (const auto& [seq, e] : index_.by_seq) {
      if (is_expired(*e, now)) {
        expired.push_back({e->id(), e->kind(), seq, RemovalReason::kExpired, e->pubkey()});
      }
    }
    for (const RemovedEvent& gone : expired) (void)remove(gone.id);
    if (Status s = commit(); !s) return s;
    return expired;
  }

  Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) override {
    std::lock_guard lock(mutex_);
    std::vector<RemovedEvent> erased;
    (void)erase_events(*this, ids, erased);
    if (Status s = commit(); !s) return s;
    return erased;
  }

 private:
  // The write primitives the storage rules run on. Each mutation changes the index and, unless
  // replaying, logs a record; none fails.
  Result<std::optional<StoredRef>> find(const EventId& id) override {
    if (!index_.created.contains(id)) return std::optional<StoredRef>();
    const StoredEvent& s = stored(id);
    const Event& e = *s.event;
    return std::optional<StoredRef>(StoredRef{id, e.pubkey(), e.created_at(), e.kind(), s.seq});
  }

  Result<bool> id_deleted(const EventId& id, const Pubkey& author) override {
    return index_.deleted_ids.contains({id, author});
  }

  Result<std::optional<std::int64_t>> address_deleted_until(const Address& address) override {
    auto it = index_.deleted_slots.find(address);
    if (it == index_.deleted_slots.end()) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(it->second);
  }

  Status versions(const Address& address, std::vector<StoredRef>& out) override {
    out.clear();
    auto it = index_.slots.find(address);
    if (it != index_.slots.end()) out.push_back(**find(it->second));
    return Status::ok();
  }

  Status remove(const EventId& id) override {
    auto node = index_.by_time.find(TimeKey{index_.created.at(id), id});
    const StoredEvent s = node->second;
    if (auto slot = address_of(*s.event)) {
      auto it = index_.slots.find(*slot);
      if (it != index_.slots.end() && it->second == id) index_.slots.erase(it);
    }
    index_.by_seq.erase(s.seq);
    index_.by_time.erase(node);
    index_.created.erase(id);
    if (!replaying_) pending_ += "- " + to_hex(id) + "\n";
    return Status::ok();
  }

  Result<std::uint64_t> insert(const EventPtr& e) override {
    return insert_at(e, index_.last_seq + 1);
  }

  Status add_id_tombstone(const EventId& id, const Pubkey& author) override {
    index_.deleted_ids.emplace(id, author);
    if (!replaying_) pending_ += "x " + to_hex(id) + " " + to_hex(author) + "\n";
    return Status::ok();
  }

  Status add_address_tombstone(const Address& address, std::int64_t until) override {
    std::int64_t& bound = index_.deleted_slots.try_emplace(address, until).first->second;
    bound = std::max(bound, until);
    if (!replaying_) {
      pending_ += "a " + std::to_string(until) + " " + std::to_string(address.kind) + " " +
                  to_hex(address.pubkey) + " " + hex_of(address.d) + "\n";
    }
    return Status::ok();
  }

  const StoredEvent& stored(const EventId& id) const {
    return index_.by_time.at(TimeKey{index_.created.at(id), id});
  }

  std::uint64_t insert_at(const EventPtr& e, std::uint64_t seq) {
    index_.by_time.emplace(TimeKey{e->created_at(), e->id()}, StoredEvent{e, seq});
    index_.created.emplace(e->id(), e->created_at());
    index_.by_seq.emplace(seq, e);
    if (auto slot = address_of(*e)) index_.slots[*slot] = e->id();
    index_.last_seq = std::max(index_.last_seq, seq);
    if (!replaying_) pending_ += "+ " + std::to_string(seq) + " " + std::string(e->json()) + "\n";
    return seq;
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

  // Applies one record to the index, as the write that logged it did.
  Status replay(std::string_view line) {
    std::string_view rest = line;
    const std::string_view type = next_field(rest);
    EventId id{};
    Pubkey pubkey{};
    if (type == "." && rest.empty()) return Status::ok();
    if (type == "-" && from_hex(rest, id) && index_.created.contains(id)) return remove(id);
    if (type == "x" && from_hex(next_field(rest), id) && from_hex(rest, pubkey)) {
      return add_id_tombstone(id, pubkey);
    }
    std::int64_t until = 0;
    Address address;
    if (type == "a" && parse_int(next_field(rest), until) &&
        parse_int(next_field(rest), address.kind) && from_hex(next_field(rest), address.pubkey)) {
      address.d.resize(rest.size() / 2);
      auto* d = reinterpret_cast<std::uint8_t*>(address.d.data());
      if (hex_decode(rest, d, address.d.size())) return add_address_tombstone(address, until);
    }
    std::uint64_t seq = 0;
    if (type == "+" && parse_int(next_field(rest), seq) && seq > 0) {
      // The log holds only events relaycore accepted, under whatever limits the host set.
      Limits any;
      any.max_event_bytes = any.max_content_bytes = any.max_tag_value_bytes = SIZE_MAX;
      any.max_message_bytes = any.max_event_tags = any.max_tag_strings = SIZE_MAX;
      if (Result<EventPtr> e = parse_event(rest, any)) {
        insert_at(*e, seq);
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
