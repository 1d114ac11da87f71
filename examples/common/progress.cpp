#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace relaycore::examples {
namespace {

constexpr auto kTtyEvery = std::chrono::milliseconds(100);
constexpr auto kLineEvery = std::chrono::seconds(5);
constexpr int kBarWidth = 30;

std::string duration_text(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

Progress::Progress(std::string what, std::string unit, std::uint64_t total)
    : what_(std::move(what)), unit_(std::move(unit)), total_(total), tty_(::isatty(2) == 1) {}

void Progress::add(std::uint64_t n) {
  done_ += n;
  const Clock::time_point now = Clock::now();
  if (now - last_draw_ < (tty_ ? Clock::duration(kTtyEvery) : Clock::duration(kLineEvery))) {
    return;
  }
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  // Plain output gets a last line only if it said anything before: short runs stay quiet.
  if (tty_ || drawn_) draw(true);
}

void Progress::draw(bool last) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  std::string eta;
  if (total_ > 0 && rate > 0 && done_ < total_) {
    eta = "  ETA " + duration_text(static_cast<double>(total_ - done_) / rate);
  }
  char counts[96];
  if (total_ > 0) {
    std::snprintf(counts, sizeof counts, "%llu/%llu %s", static_cast<unsigned long long>(done_),
                  static_cast<unsigned long long>(total_), unit_.c_str());
  } else {
    std::snprintf(counts, sizeof counts, "%llu %s", static_cast<unsigned long long>(done_),
                  unit_.c_str());
  }
  char speed[48];
  std::snprintf(speed, sizeof speed, "%.0f/s", rate);
  if (tty_) {
    std::string bar;
    if (total_ > 0) {
      const double fraction =
          std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
      const int filled = static_cast<int>(fraction * kBarWidth);
      bar = "[" + std::string(static_cast<std::size_t>(filled), '#') +
            std::string(static_cast<std::size_t>(kBarWidth - filled), '.') + "] ";
    }
    // \r and erase-to-end-of-line redraw in place.
    std::fprintf(stderr, "\r%s %s%s  %s%s\x1b[K%s", what_.c_str(), bar.c_str(), counts, speed,
                 eta.c_str(), last ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s: %s, %s%s%s\n", what_.c_str(), counts, speed, eta.c_str(),
                 last ? ", done" : "");
  }
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace relaycore::examples
