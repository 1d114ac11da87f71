// Outbox on its own: frames reach the connection in order and, within a FlushScope, each
// connection gets all of its frames in one send_batch() when the scope ends; a close still sends
// what was queued before it.
#include <catch2/catch.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/outbox.hpp"

using namespace relaycore;
using relaycore::pipeline::FlushScope;
using relaycore::pipeline::Outbox;

namespace {

// Records each send_batch() call (a send() is a batch of one) and the close.
class BatchConnection : public Connection {
 public:
  void send(Frame frame) override { send_batch(std::span<Frame>(&frame, 1)); }
  void send_batch(std::span<Frame> frames) override {
    std::vector<std::string> batch;
    for (const Frame& f : frames) batch.push_back(f.to_string());
    std::lock_guard lock(mu);
    batches.push_back(std::move(batch));
  }
  void close(std::string_view reason) override {
    std::lock_guard lock(mu);
    closed_with = std::string(reason);
    closed = true;
  }
  std::size_t queued_bytes() const override { return 0; }

  std::mutex mu;
  std::vector<std::vector<std::string>> batches;
  bool closed = false;
  std::string closed_with;
};

using Batches = std::vector<std::vector<std::string>>;

}  // namespace

TEST_CASE("outbox: without a FlushScope every send reaches the connection at once") {
  auto conn = std::make_shared<BatchConnection>();
  auto outbox = std::make_shared<Outbox>(conn, 1 << 20, Log());
  outbox->send(Frame("a"));
  outbox->send(Frame("b"));
  CHECK(conn->batches == Batches{{"a"}, {"b"}});
}

TEST_CASE("outbox: a FlushScope hands each connection its frames in one batch, in order") {
  auto c1 = std::make_shared<BatchConnection>();
  auto c2 = std::make_shared<BatchConnection>();
  auto o1 = std::make_shared<Outbox>(c1, 1 << 20, Log());
  auto o2 = std::make_shared<Outbox>(c2, 1 << 20, Log());
  {
    FlushScope scope;
    o1->send(Frame("1a"));
    o2->send(Frame("2a"));
    o1->send(Frame("1b"));
    {
      FlushScope inner;  // nested: only the outermost scope flushes
      o1->send(Frame("1c"));
    }
    CHECK(c1->batches.empty());
    CHECK(c2->batches.empty());
  }
  CHECK(c1->batches == Batches{{"1a", "1b", "1c"}});
  CHECK(c2->batches == Batches{{"2a"}});
  // After the scope, sends go straight out again.
  o2->send(Frame("2b"));
  CHECK(c2->batches == Batches{{"2a"}, {"2b"}});
}

TEST_CASE("outbox: close() inside a FlushScope sends the queued frames before closing") {
  auto conn = std::make_shared<BatchConnection>();
  auto outbox = std::make_shared<Outbox>(conn, 1 << 20, Log());
  {
    FlushScope scope;
    outbox->send(Frame("last words"));
    outbox->close("bye");
    CHECK(conn->batches == Batches{{"last words"}});
    CHECK(conn->closed);
    CHECK(conn->closed_with == "bye");
  }
  CHECK(conn->batches == Batches{{"last words"}});
}
