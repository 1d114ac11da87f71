// The in-process PubSub: one node, so every publish is this node's own echo. It exists so that
// the single-node and multi-node paths through the dispatcher are the same code.
#include <mutex>

#include "relaycore/pubsub.hpp"

namespace relaycore {
namespace {

class LocalPubSub final : public PubSub {
 public:
  Status publish(const EventPtr& event, const std::string& origin) override {
    Handler handler;
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status::error("pubsub is closed");
      handler = handler_;
    }
    if (handler) handler(event, origin);
    return Status::ok();
  }

  Status subscribe(Handler handler) override {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
    return Status::ok();
  }

  void close() override {
    std::lock_guard lock(mu_);
    closed_ = true;
    handler_ = nullptr;
  }

 private:
  std::mutex mu_;
  Handler handler_;
  bool closed_ = false;
};

}  // namespace

std::shared_ptr<PubSub> new_local_pubsub() { return std::make_shared<LocalPubSub>(); }

}  // namespace relaycore
