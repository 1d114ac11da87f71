// Query stage, NIP-77: answers one negentropy message of a sync session on a reader thread. The
// session's first job reads the (created_at, id) of every event its filter matches, at most
// the configured number of records plus one (to tell that a filter covers too many).
#include <fmt/format.h>

#include "pipeline/neg_session.hpp"
#include "pipeline/outbox.hpp"
#include "pipeline/stages.hpp"
#include "relaycore/message.hpp"

namespace relaycore::pipeline {
namespace {

// The records the session's filter covers; a NEG-ERR reason when they cannot be had.
Result<NegentropySet> load_records(const Options& options, const Log& log, Storage& storage,
                                   const NegSession& session) {
  if (session.empty) return make_negentropy_set({});
  const std::uint32_t cap = options.negentropy.max_records;
  QueryRequest request;
  request.now = unix_now();
  request.max_limit = cap == UINT32_MAX ? cap : cap + 1;
  std::vector<NegentropyItem> items;
  Status s = storage.scan_keys(session.filter, request, [&](const EventKey& key) {
    items.push_back(NegentropyItem{static_cast<std::uint64_t>(key.created_at), key.id});
    return true;
  });
  if (!s) {
    log.failure(LogLevel::kError, "query: reading negentropy records failed", s.message());
    return Status::error("could not read from storage");
  }
  if (items.size() > cap) {
    return Status::blocked(fmt::format(
        "this filter matches more than {} events; sync it in parts (since/until)", cap));
  }
  return make_negentropy_set(std::move(items));
}

}  // namespace

SliceOutcome QueryStage::run(NegJob& job, Clock::time_point /*deadline*/) {
  const Deps& d = deps_;
  NegSession& session = *job.session;
  std::shared_ptr<Outbox> outbox = session.outbox.lock();
  if (!outbox || session.closed()) {
    session.end_job();
    return SliceOutcome::kDone;
  }
  auto refuse = [&](const Status& why) {
    if (session.close()) outbox->send(Frame(neg_err_message(session.sub_id, why.message())));
    session.end_job();
    return SliceOutcome::kDone;
  };
  if (!session.neg) {
    Result<NegentropySet> set = load_records(d.options, d.log, *d.storage, session);
    if (!set) return refuse(set.error());
    NegentropyOptions options;
    options.frame_size_limit = d.options.negentropy.frame_size_limit;
    session.neg = std::make_unique<Negentropy>(std::move(set).value(), options);
  }
  Result<std::string> reply = session.neg->respond(job.message);
  if (!reply) return refuse(reply.error());
  outbox->send(Frame(neg_msg_message(session.sub_id, *reply)));
  session.end_job();
  return SliceOutcome::kDone;
}

}  // namespace relaycore::pipeline
