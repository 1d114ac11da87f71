// export, import and delete: events in and out of the database through relaycore's own storage
// and relay, so that an import is checked exactly as the relay checks a client's EVENT.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../common/progress.hpp"
#include "admin.hpp"
#include "relaycore/filter.hpp"
#include "relaycore/relay.hpp"
#include "relaycore/storage.hpp"

namespace relaycore::admin {

using examples::Progress;
namespace {

// Events read per storage query: memory stays at one page whatever the store holds.
constexpr std::uint32_t kPage = 1000;
// Events submitted and not yet answered during an import.
constexpr std::size_t kInFlight = 1024;
// Ids removed per Storage::erase call.
constexpr std::size_t kEraseBatch = 500;
// Rejections printed one by one; past that only their counts by reason.
constexpr std::size_t kRejectionsShown = 50;

Result<std::shared_ptr<Storage>> open_storage(const Args& args) {
  SqliteOptions options;
  options.path = args.db;
  options.readers = 1;
  return new_sqlite_storage(options);
}

// The --filter option as a Filter: everything when absent. An operator may list many ids.
Result<Filter> filter_of(const Args& args) {
  if (!args.has("--filter")) return Filter();
  Limits limits;
  limits.max_filter_values = 1u << 24;
  limits.max_filter_tags = 64;
  return parse_filter(args.get("--filter"), limits);
}

// Calls `visit` for every stored event matching `filter`, newest first, a page at a time; the
// filter's own limit, if any, caps the total. Expired events not yet purged are included.
Status scan(Storage& storage, const Filter& filter,
            const std::function<void(const EventPtr&)>& visit) {
  std::uint64_t left = filter.limit ? *filter.limit : UINT64_MAX;
  Filter page_filter = filter;
  page_filter.limit.reset();
  QueryRequest request;
  request.now = 0;
  while (left > 0) {
    request.max_limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(kPage, left));
    std::uint32_t seen = 0;
    Status s = storage.query(page_filter, request, [&](const StoredEvent& e) {
      visit(e.event);
      request.after = event_key(*e.event);
      ++seen;
      return true;
    });
    if (!s) return s;
    left -= seen;
    if (seen < request.max_limit) break;
  }
  return Status::ok();
}

// How many events `filter` matches, for the progress bar's total; 0 when unknown.
std::uint64_t total_of(Storage& storage, const Filter& filter) {
  Result<std::uint64_t> n = storage.count({filter}, QueryRequest());
  if (!n) return 0;
  return filter.limit ? std::min<std::uint64_t>(*n, *filter.limit) : *n;
}

}  // namespace

int export_events(const Args& args) {
  Result<Filter> filter = filter_of(args);
  if (!filter) return fail("--filter: " + filter.error().message());
  Result<std::shared_ptr<Storage>> storage = open_storage(args);
  if (!storage) return fail("cannot open " + args.db + ": " + storage.error().message());
  std::FILE* out = stdout;
  if (args.has("--out")) {
    out = std::fopen(args.get("--out").c_str(), "w");
    if (!out) return fail("cannot write " + args.get("--out"));
  }
  std::uint64_t exported = 0;
  Status s;
  {
    Progress progress("export", "events", total_of(**storage, *filter));
    s = scan(**storage, *filter, [&](const EventPtr& e) {
      std::fwrite(e->json().data(), 1, e->json().size(), out);
      std::fputc('\n', out);
      ++exported;
      progress.add(1);
    });
  }
  const bool written = std::fflush(out) == 0 && !std::ferror(out);
  if (out != stdout) std::fclose(out);
  if (!s) return fail("export: " + s.message());
  if (!written) return fail("export: writing the output failed");
  std::fprintf(stderr, "exported %llu events\n", static_cast<unsigned long long>(exported));
  return kExitOk;
}

// A relay on the database, writing to the audit log given with --audit: the writing commands
// go through it, so what they store or remove passes the relay's rules and is audited.
Result<std::unique_ptr<Relay>> open_relay(const Args& args) {
  Options options;
  options.sqlite.path = args.db;
  options.log_level = LogLevel::kWarn;
  if (args.has("--audit")) {
    SqliteAuditOptions audit;
    audit.path = args.get("--audit");
    Result<std::shared_ptr<AuditSink>> sink = new_sqlite_audit_log(audit);
    if (!sink) {
      return Status::error("cannot open audit log " + audit.path + ": " + sink.error().message());
    }
    options.audit = std::move(sink).value();
  }
  Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(options));
  if (!relay) return Status::error("cannot open " + args.db + ": " + relay.error().message());
  return relay;
}

int import_events(const Args& args) {
  const std::string& path = args.positional[0];
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    if (!file) return fail("cannot read " + path);
  }
  std::istream& in = path == "-" ? std::cin : file;

  Result<std::unique_ptr<Relay>> relay = open_relay(args);
  if (!relay) return fail(relay.error().message());

  std::mutex mu;
  std::condition_variable cv;
  std::size_t in_flight = 0;
  std::uint64_t stored = 0, duplicates = 0, rejected = 0;
  std::map<std::string, std::uint64_t> reasons;  // rejections by reason, without the detail
  auto reject = [&](std::uint64_t line, std::string_view id, const std::string& reason) {
    // Called with `mu` held.
    if (++rejected <= kRejectionsShown) {
      std::fprintf(stderr, "line %llu%s%.*s: %s\n", static_cast<unsigned long long>(line),
                   id.empty() ? "" : " ", static_cast<int>(id.size()), id.data(), reason.c_str());
    }
    ++reasons[reason];
  };

  Progress progress("import", "events", 0);
  std::string text;
  std::uint64_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    Result<EventPtr> event = parse_event(text);
    if (!event) {
      std::lock_guard lock(mu);
      reject(line, "", event.error().message());
      continue;
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < kInFlight; });
      ++in_flight;
    }
    const std::string id(event.value()->id_hex());
    relay.value()->submit_async(*event, [&, line, id](const OkResult& ok) {
      std::lock_guard lock(mu);
      if (ok.accepted && ok.message.rfind("duplicate:", 0) == 0) {
        ++duplicates;
      } else if (ok.accepted) {
        ++stored;
      } else if (ok.message.rfind("duplicate:", 0) == 0) {
        // An older version of a replaceable event than the one stored.
        ++duplicates;
      } else {
        reject(line, id, ok.message);
      }
      --in_flight;
      cv.notify_all();
    });
    progress.add(1);
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  progress.finish();
  Status closed = relay.value()->shutdown();
  if (rejected > kRejectionsShown) {
    std::fprintf(stderr, "rejections by reason:\n");
    for (const auto& [reason, n] : reasons) {
      std::fprintf(stderr, "  %llu  %s\n", static_cast<unsigned long long>(n), reason.c_str());
    }
  }
  std::printf("stored %llu, duplicates %llu, rejected %llu\n",
              static_cast<unsigned long long>(stored), static_cast<unsigned long long>(duplicates),
              static_cast<unsigned long long>(rejected));
  if (!closed) return fail("import: " + closed.message());
  if (in.bad()) return fail("import: reading " + path + " failed");
  return rejected > 0 ? kExitFailed : kExitOk;
}

int delete_events(const Args& args) {
  Result<Filter> filter = filter_of(args);
  if (!filter) return fail("--filter: " + filter.error().message());
  Result<std::shared_ptr<Storage>> storage = open_storage(args);
  if (!storage) return fail("cannot open " + args.db + ": " + storage.error().message());
  const bool dry_run = args.has("--dry-run");
  std::vector<EventId> ids;
  Status s = scan(**storage, *filter, [&](const EventPtr& e) {
    // A dry run lists what would go, as export would write it.
    if (dry_run) std::printf("%.*s\n", static_cast<int>(e->json().size()), e->json().data());
    ids.push_back(e->id());
  });
  if (!s) return fail("delete: " + s.message());
  if (dry_run) {
    std::fprintf(stderr, "would delete %zu events (dry run: nothing removed)\n", ids.size());
    return kExitOk;
  }
  *storage = nullptr;  // the relay opens the database itself
  Result<std::unique_ptr<Relay>> relay = open_relay(args);
  if (!relay) return fail(relay.error().message());
  std::uint64_t removed = 0;
  Progress progress("delete", "events", ids.size());
  Status failed;
  for (std::size_t i = 0; i < ids.size() && failed.is_ok(); i += kEraseBatch) {
    const std::size_t n = std::min(kEraseBatch, ids.size() - i);
    // Through the relay: each removed event gets an audit record (event_erased).
    Result<std::vector<RemovedEvent>> erased =
        (*relay)->erase(std::span<const EventId>(&ids[i], n));
    if (!erased) {
      failed = erased.error();
      break;
    }
    removed += erased->size();
    progress.add(n);
  }
  progress.finish();
  Status closed = (*relay)->shutdown();
  if (!failed) {
    return fail("delete: " + failed.message() + " (after " + std::to_string(removed) + " removed)");
  }
  if (!closed) return fail("delete: " + closed.message());
  std::printf("deleted %llu events\n", static_cast<unsigned long long>(removed));
  return kExitOk;
}

}  // namespace relaycore::admin
