// Runs an example program as its user would: a child process whose stdout the test reads line
// by line, and whose stdin is either a pipe the test writes to or a file.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace relaycore::examples_test {

class ChildProcess {
 public:
  // Starts argv[0] with the given arguments. With an empty `stdin_path` the test writes the
  // child's stdin through write_line(); otherwise the child reads that file. With
  // `merge_stderr`, the child's stderr lines come through read_line() too.
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string& stdin_path = "",
                        bool merge_stderr = false) {
    ::signal(SIGPIPE, SIG_IGN);  // a child that exits early must not kill the test
    int in[2] = {-1, -1};
    int out[2] = {-1, -1};
    if (stdin_path.empty() && ::pipe2(in, O_CLOEXEC) != 0) return;
    if (!stdin_path.empty() && (in[0] = ::open(stdin_path.c_str(), O_RDONLY | O_CLOEXEC)) < 0) {
      return;
    }
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      if (merge_stderr) ::dup2(out[1], STDERR_FILENO);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }

  ~ChildProcess() {
    close_stdin();
    if (out_ >= 0) ::close(out_);
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0 && out_ >= 0; }

  // For signals other than the final SIGKILL (e.g. SIGSTOP to make a server hang).
  pid_t pid() const { return pid_; }

  bool write_line(std::string_view line) {
    std::string data = std::string(line) + "\n";
    std::string_view rest = data;
    while (!rest.empty()) {
      ssize_t n = ::write(in_, rest.data(), rest.size());
      if (n <= 0) return false;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }

  // The next line of output, without its newline; nothing at end of output or after `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::size_t eol = buffer_.find('\n');
      if (eol != std::string::npos) {
        std::string line = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 1);
        return line;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }

  // Every line until the child closes its stdout.
  std::vector<std::string> read_all(std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<std::string> lines;
    while (fill(deadline)) {
    }
    for (std::size_t eol; (eol = buffer_.find('\n')) != std::string::npos;) {
      lines.push_back(buffer_.substr(0, eol));
      buffer_.erase(0, eol + 1);
    }
    if (!buffer_.empty()) lines.push_back(std::exchange(buffer_, std::string()));
    return lines;
  }

  // The exit code; -1 when the child was killed, or did not exit within `timeout` (it is
  // killed then).
  int wait(std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        waited_ = true;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    waited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  static constexpr std::chrono::milliseconds kTimeout{8000};

  // Reads what is available into buffer_; false at end of output or at the deadline.
  bool fill(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[4096];
    ssize_t n = ::read(out_, chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  bool waited_ = false;
  std::string buffer_;
};

}  // namespace relaycore::examples_test
