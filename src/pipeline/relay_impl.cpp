// Relay::open and the object that owns the stages: start-up (storage, audit reconciliation,
// PubSub), submit(), stats() and the ordered shutdown.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "crypto/secp256k1_context.hpp"
#include "pipeline/in_process.hpp"
#include "pipeline/session_impl.hpp"
#include "pipeline/stages.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/relay.hpp"

namespace relaycore {

namespace pipeline {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr std::size_t kRecoveryBatch = 1024;

// Appends kRecovered records for events the store committed but the audit log never got,
// e.g. because the process died between commit and the audit write.
Status reconcile_audit(Storage& storage, AuditSink& audit) {
  Result<std::uint64_t> last = audit.last_event_seq();
  if (!last) return last.error();
  std::vector<AuditRecord> batch;
  Status failed;
  const std::int64_t now = unix_now();
  Status scanned = storage.scan_since(*last, [&](const StoredEvent& e) {
    AuditRecord r;
    r.event_seq = e.seq;
    r.timestamp = now;
    r.action = AuditAction::kRecovered;
    r.event_id = e.event->id();
    r.kind = e.event->kind();
    r.actor = e.event->pubkey();
    batch.push_back(r);
    if (batch.size() >= kRecoveryBatch) {
      failed = audit.enqueue(std::move(batch));
      batch.clear();
      if (!failed) return false;
    }
    return true;
  });
  if (!scanned) return scanned;
  if (!failed) return failed;
  if (!batch.empty()) return audit.enqueue(std::move(batch));
  return Status::ok();
}

// The handle of Relay::subscribe(): closing it ends the session behind the subscription.
class InProcessSubscription final : public SubscriptionHandle {
 public:
  InProcessSubscription(std::shared_ptr<SessionImpl> session,
                        std::shared_ptr<CallbackConnection> conn)
      : session_(std::move(session)), conn_(std::move(conn)) {}
  ~InProcessSubscription() override { close(); }

  void close() override {
    std::call_once(closed_, [this] {
      conn_->cancel();
      session_->on_close();
    });
  }

 private:
  std::shared_ptr<SessionImpl> session_;
  std::shared_ptr<CallbackConnection> conn_;
  std::once_flag closed_;
};

class RelayImpl final : public Relay {
 public:
  explicit RelayImpl(std::shared_ptr<Core> core)
      : core_(std::move(core)),
        verify_({core_->verifier, core_->log, core_->stats, core_->ingest, core_->writes}),
        dispatch_({core_->log, core_->stats, core_->index, core_->pubsub,
                   core_->options.pubsub != nullptr, core_->node_id, core_->listeners,
                   core_->dispatch}),
        write_({core_->options, core_->live, core_->log, core_->stats, core_->recent_ids,
                core_->index, core_->storage, core_->audit, core_->writes, core_->dispatch},
               dispatch_),
        query_({core_->options, core_->live, core_->log, core_->index, core_->storage,
                core_->scheduler}) {}

  ~RelayImpl() override {
    bool drained_here = false;
    Status s = drain(drained_here);
    // A host that called shutdown() itself has had the result.
    if (drained_here && !s) core_->log.write(LogLevel::kError, "relay: shutdown: {}", s.message());
  }

  void start() {
    std::size_t verifiers = core_->options.verify_threads;
    // One core is left to the writer: it is busy for every event too, and with every core
    // verifying, the verifiers sat blocked on a full write queue while it synced (on 2 cores,
    // SQLite ingest ran at 15,500 events/s with 2 verify threads and 20,300 with 1;
    // benchmarks/README.md, in-process ingest).
    if (verifiers == 0) {
      const unsigned hw = std::thread::hardware_concurrency();
      verifiers = hw > 1 ? hw - 1 : 1;
    }
    verify_.start(verifiers);
    write_.start();
    dispatch_.start();
    query_.start(core_->options.reader_threads);
    const Options& o = core_->options;
    core_->log.write(LogLevel::kDebug,
                     "relay: open as node {}; {} verify threads, {} reader threads, {} dispatch, "
                     "{}, {}",
                     core_->node_id, verifiers, o.reader_threads,
                     o.dispatch == DispatchMode::kInline ? "inline" : "deferred",
                     o.audit ? "audited" : "no audit log",
                     o.pubsub ? "host PubSub" : "in-process PubSub");
  }

  std::shared_ptr<Session> open_session(std::shared_ptr<Connection> connection,
                                        ClientInfo client) override {
    auto session = std::make_shared<SessionImpl>(core_, std::move(connection), std::move(client));
    session->start();
    return session;
  }

  void submit_async(EventPtr event, std::function<void(const OkResult&)> done) override {
    // The OK reaches `done` on the callback thread: the writer never runs host code, and `done`
    // may submit again without waiting on itself.
    std::weak_ptr<CallbackExecutor> executor = core_->callbacks;
    ingest(std::move(event), [executor, done = std::move(done)](const OkResult& r) {
      std::shared_ptr<CallbackExecutor> e = executor.lock();
      if (!done || (e && e->post([done, r] { done(r); }))) return;
      done(r);  // the callback thread has stopped: shutting down
    });
  }

  void ingest(EventPtr event, AckFn ack) {
    IngestJob job;
    job.received = Clock::now();
    job.ack = std::move(ack);
    if (!event) {
      acknowledge(core_->stats, core_->log, job.ack, job.received, {false, "invalid: no event"});
      return;
    }
    job.event = std::move(event);
    if (core_->stopping.load() || !core_->ingest.push(job)) {
      acknowledge(core_->stats, core_->log, job.ack, job.received,
                  {false, "error: relay is shutting down"});
    }
  }

  OkResult submit(EventPtr event) override {
    auto promise = std::make_shared<std::promise<OkResult>>();
    std::future<OkResult> result = promise->get_future();
    ingest(std::move(event), [promise](const OkResult& r) { promise->set_value(r); });
    return result.get();
  }

  Result<std::vector<RemovedEvent>> erase(std::span<const EventId> ids) override {
    using Erased = Result<std::vector<RemovedEvent>>;
    auto promise = std::make_shared<std::promise<Erased>>();
    std::future<Erased> result = promise->get_future();
    WriteJob job;
    job.received = Clock::now();
    job.erase = std::make_shared<EraseJob>();
    job.erase->ids.assign(ids.begin(), ids.end());
    job.erase->done = [promise](Erased erased) { promise->set_value(std::move(erased)); };
    if (core_->stopping.load() || !core_->writes.push(job)) {
      return Status::error("relay is shutting down");
    }
    return result.get();
  }

  Status query(const std::vector<Filter>& filters,
               const std::function<bool(const EventPtr&)>& visit) override {
    return query_in_process(*core_, filters, visit);
  }

  Result<std::uint64_t> count(const std::vector<Filter>& filters) override {
    return count_in_process(*core_, filters);
  }

  Result<std::unique_ptr<SubscriptionHandle>> subscribe(std::vector<Filter> filters,
                                                        SubscribeCallbacks callbacks) override {
    if (core_->stopping.load()) return Status::error("relay is shutting down");
    auto conn =
        std::make_shared<CallbackConnection>(core_->callbacks, std::move(callbacks), core_->log);
    auto session = std::make_shared<SessionImpl>(core_, conn, ClientInfo{"in-process", {}});
    conn->attach(session);
    session->start(/*counted=*/false);
    session->subscribe("in-process", std::move(filters));
    return std::unique_ptr<SubscriptionHandle>(
        std::make_unique<InProcessSubscription>(std::move(session), std::move(conn)));
  }

  std::unique_ptr<ListenerHandle> listen(ChangeListener listener) override {
    return core_->listeners->add(std::move(listener));
  }

  std::string info_document() const override { return core_->live.get().info_document; }

  Status reconfigure(const Options& options) override {
    if (core_->stopping.load()) return Status::error("relay is shutting down");
    // One change at a time, so the limiter and the live settings come from the same options.
    std::lock_guard lock(reconfigure_mu_);
    if (Status s = validate_retention(options.retention); !s) return s;
    if (Status s = core_->rate_limiter->reconfigure(options.rate_limits); !s) return s;
    core_->live.set(options);
    core_->log.write(LogLevel::kDebug, "relay: reconfigured");
    return Status::ok();
  }

  RelayStats stats() const override {
    RelayStats s;
    core_->stats.fill(s);
    s.ingest_queue = core_->ingest.size();
    s.write_queue = core_->writes.size();
    s.dispatch_queue = core_->dispatch.size();
    s.query_queue = core_->scheduler.size();
    s.audit_queue = core_->audit ? core_->audit->queued() : 0;
    s.subscriptions_open = core_->index.size();
    s.rate_limits = core_->rate_limiter->stats();
    // Accepted by publish() but lost later: failed, not published.
    const std::uint64_t lost = std::min(core_->pubsub->dropped_after_accept(), s.pubsub_published);
    s.pubsub_published -= lost;
    s.pubsub_publish_failed += lost;
    return s;
  }

  Status shutdown() override {
    bool drained_here = false;
    return drain(drained_here);
  }

 private:
  // Committed events that did not reach the other nodes: publish() failed, or the PubSub
  // dropped them after accepting them.
  std::uint64_t unpublished() const {
    return core_->stats.pubsub_publish_failed.load() + core_->pubsub->dropped_after_accept();
  }

  // shutdown(). `drained_here` is set when this call ran the drain, rather than returning the
  // result of an earlier one.
  Status drain(bool& drained_here) {
    std::lock_guard lock(shutdown_mu_);
    if (shut_down_) return shutdown_status_;
    shut_down_ = true;
    drained_here = true;
    // Counted from before new work is refused, so that a refusal implies the count was taken.
    const std::uint64_t unpublished_before = unpublished();
    core_->stopping.store(true);
    std::vector<std::string> lost;
    // Drain in pipeline order: each stage finishes what it holds before the next stops.
    core_->ingest.close();
    verify_.join();
    core_->writes.close();
    write_.join();
    if (core_->audit) {
      if (Status s = core_->audit->close(); !s) lost.emplace_back(s.detail());
    }
    core_->dispatch.close();
    dispatch_.join();
    core_->pubsub->close();
    if (const std::uint64_t n = unpublished() - unpublished_before; n > 0) {
      lost.push_back(fmt::format("{} committed events did not reach the other nodes", n));
    }
    core_->neg_reaper.stop();
    core_->scheduler.stop();
    query_.join();
    // Last, so that every OK and change already queued reaches its callback.
    core_->callbacks->stop();
    if (!lost.empty()) shutdown_status_ = Status::error(fmt::format("{}", fmt::join(lost, "; ")));
    core_->log.report_suppressed();
    core_->log.write(LogLevel::kDebug, "relay: shut down");
    return shutdown_status_;
  }

  std::shared_ptr<Core> core_;
  VerifyStage verify_;
  DispatchStage dispatch_;
  WriteStage write_;
  QueryStage query_;
  std::mutex reconfigure_mu_;
  std::mutex shutdown_mu_;  // serialises shutdown(); guards the two below
  bool shut_down_ = false;
  Status shutdown_status_;
};

std::string random_node_id() {
  std::array<std::uint8_t, 8> bytes{};
  crypto::os_random(bytes.data(), bytes.size());
  return to_hex(bytes);
}

}  // namespace
}  // namespace pipeline

Result<std::unique_ptr<Relay>> Relay::open(Options options) {
  using namespace pipeline;
  auto core = std::make_shared<Core>(std::move(options));
  const Options& opts = core->options;
  core->node_id = opts.node_id.empty() ? random_node_id() : opts.node_id;

  // Before storage, so a bad setting fails without touching the database.
  if (Status s = validate_retention(opts.retention); !s) return s;
  Result<std::shared_ptr<RateLimiter>> limiter = new_rate_limiter(opts.rate_limits);
  if (!limiter) return limiter.error();
  core->rate_limiter = std::move(limiter).value();

  core->storage = opts.storage;
  if (!core->storage) {
    SqliteOptions sqlite_options = opts.sqlite;
    // At the relay's level: migrations' progress at info, rows a read skipped at error.
    if (!sqlite_options.logger) sqlite_options.logger = leveled_logger(opts.logger, opts.log_level);
    Result<std::shared_ptr<Storage>> sqlite = new_sqlite_storage(sqlite_options);
    if (!sqlite) return sqlite.error();
    core->storage = std::move(sqlite).value();
  }
  Result<std::uint64_t> max_seq = core->storage->max_seq();
  if (!max_seq) return max_seq.error();
  core->index.set_committed(*max_seq);

  core->audit = opts.audit;
  if (core->audit) {
    if (Status s = reconcile_audit(*core->storage, *core->audit); !s) return s;
  }

  core->pubsub = opts.pubsub ? opts.pubsub : new_local_pubsub();
  std::weak_ptr<Core> weak = core;
  Status subscribed =
      core->pubsub->subscribe([weak](const EventPtr& ev, const std::string& origin) {
        std::shared_ptr<Core> c = weak.lock();
        if (!c || !ev || origin == c->node_id) return;  // our own echo
        bump(c->stats.pubsub_received);
        DispatchJob job;
        job.events.push_back(ev);
        job.seqs.push_back(0);
        job.local = false;
        job.committed = Clock::now();
        if (!c->dispatch.push(job)) {
          // Only once shutdown() has stopped dispatch, with the sessions about to go too.
          c->log.failure(LogLevel::kDebug,
                         "pubsub: an event from another node came after dispatch stopped",
                         "not delivered live");
        }
      });
  if (!subscribed) return subscribed;

  auto relay = std::make_unique<RelayImpl>(core);
  relay->start();
  return std::unique_ptr<Relay>(std::move(relay));
}

}  // namespace relaycore
