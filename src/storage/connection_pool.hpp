// A fixed set of connections, each used by one thread at a time: acquire() waits for a free one
// and the lease gives it back. The SQLite storage pools its readers with it, the PostgreSQL
// storage its read connections.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

namespace relaycore::storage {

template <typename Connection>
class ConnectionPool {
 public:
  class Lease {
   public:
    Lease(ConnectionPool& pool, Connection* conn) noexcept : pool_(pool), conn_(conn) {}
    ~Lease() { pool_.release(conn_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    Connection& operator*() const noexcept { return *conn_; }

   private:
    ConnectionPool& pool_;
    Connection* conn_;
  };

  // Adds a connection; call before the pool is shared between threads.
  void add(std::unique_ptr<Connection> conn) {
    free_.push_back(conn.get());
    all_.push_back(std::move(conn));
  }

  Lease acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !free_.empty(); });
    Connection* conn = free_.back();
    free_.pop_back();
    return Lease(*this, conn);
  }

 private:
  void release(Connection* conn) {
    {
      std::lock_guard lock(mutex_);
      free_.push_back(conn);
    }
    available_.notify_one();
  }

  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<Connection*> free_;
  std::vector<std::unique_ptr<Connection>> all_;
};

}  // namespace relaycore::storage
