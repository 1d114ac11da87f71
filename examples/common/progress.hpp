// Progress of a long command (relaycore-admin, relaycore-sync) on stderr: on a terminal, a bar
// redrawn in place with the count, the rate and the time left; otherwise (a log, a pipe) a plain
// line every few seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace relaycore::examples {

class Progress {
 public:
  // `total` is what done means (events, pages), or 0 when it is not known in advance.
  Progress(std::string what, std::string unit, std::uint64_t total);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { finish(); }

  // Counts `n` more done; draws when it is time to.
  void add(std::uint64_t n);
  // Sets the total once it is known.
  void set_total(std::uint64_t total) { total_ = total; }
  // Draws the last state and ends the line; later calls do nothing.
  void finish();

 private:
  void draw(bool last);

  using Clock = std::chrono::steady_clock;
  const std::string what_;
  const std::string unit_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  const bool tty_;
  const Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_ = start_;
  bool drawn_ = false;
  bool finished_ = false;
};

}  // namespace relaycore::examples
