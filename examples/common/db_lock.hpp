// The lock that says "a relay is running on this database": an exclusive flock() on
// "<db>.lock", held by relaycore-relay for its whole run and by relaycore-admin's commands that
// write. SQLite's own locks last one transaction; this one lets a tool refuse to compact or
// import under a running relay. The lock file holds the holder's pid, for the message.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "relaycore/status.hpp"

namespace relaycore::examples {

class DbLock {
 public:
  DbLock() = default;
  DbLock(DbLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DbLock& operator=(DbLock&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  DbLock(const DbLock&) = delete;
  DbLock& operator=(const DbLock&) = delete;
  ~DbLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

  static std::string path_for(const std::string& db_path) { return db_path + ".lock"; }

  // Takes the lock without waiting; "error: ..." naming the holder when another process has it.
  static Result<DbLock> acquire(const std::string& db_path) {
    const std::string path = path_for(db_path);
    DbLock lock;
    lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock.fd_ < 0) return Status::error("cannot open " + path + ": " + std::strerror(errno));
    if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) {
        return Status::error("cannot lock " + path + ": " + std::strerror(errno));
      }
      char pid[32] = {};
      const ssize_t n = ::pread(lock.fd_, pid, sizeof(pid) - 1, 0);
      std::string holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : "";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return Status::error("a relay is running on " + db_path + " (process " +
                           (holder.empty() ? std::string("?") : holder) + " holds " + path + ")");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock.fd_, 0) != 0 ||
        ::pwrite(lock.fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      return Status::error("cannot write " + path + ": " + std::strerror(errno));
    }
    return lock;
  }

 private:
  int fd_ = -1;
};

}  // namespace relaycore::examples
