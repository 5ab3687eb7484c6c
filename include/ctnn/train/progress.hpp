// Progress of one epoch: on a terminal, a bar redrawn in place (loss,
// accuracy, images/s, time left); into a pipe or a file, plain lines at
// every tenth of the epoch, so that logs stay readable.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace ctnn::train {

enum class ProgressStyle {
  automatic,  // bar on a terminal, lines otherwise
  bar,
  lines,
  quiet,
};

inline bool is_terminal(std::FILE* f) {
#if defined(__unix__) || defined(__APPLE__)
  return f && isatty(fileno(f));
#else
  (void)f;
  return false;
#endif
}

class ProgressBar {
  using Clock = std::chrono::steady_clock;

 public:
  ProgressBar(std::FILE* out, ProgressStyle style, std::string label, std::size_t total)
      : out_(out), label_(std::move(label)), total_(std::max<std::size_t>(total, 1)), start_(Clock::now()) {
    style_ = style == ProgressStyle::automatic ? (is_terminal(out) ? ProgressStyle::bar : ProgressStyle::lines) : style;
    if (!out_) style_ = ProgressStyle::quiet;
  }

  // After `done` of the epoch's batches: running loss and accuracy, images so far.
  void update(std::size_t done, double loss, double accuracy, std::size_t images) {
    const double elapsed = seconds();
    const double rate = elapsed > 0 ? static_cast<double>(images) / elapsed : 0;
    const double left = done ? elapsed * static_cast<double>(total_ - std::min(done, total_)) / static_cast<double>(done) : 0;
    char stats[160];
    std::snprintf(stats, sizeof stats, "%zu/%zu  loss %.4f  acc %6.2f%%  %.0f img/s  %s %s", done, total_, loss,
                  100 * accuracy, rate, done >= total_ ? "took" : "ETA", clock_text(done >= total_ ? elapsed : left).c_str());
    if (style_ == ProgressStyle::bar) {
      const double since = std::chrono::duration<double>(Clock::now() - last_draw_).count();
      if (done < total_ && since < 0.1) return;  // at most ten redraws a second
      last_draw_ = Clock::now();
      constexpr std::size_t width = 30;
      const std::size_t filled = width * std::min(done, total_) / total_;
      std::fprintf(out_, "\r%s [%s%s] %s\033[K", label_.c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), stats);
      if (done >= total_) std::fputc('\n', out_);
      std::fflush(out_);
    } else if (style_ == ProgressStyle::lines) {
      const std::size_t tenth = done * 10 / total_;
      if (tenth == last_tenth_ && done < total_) return;
      last_tenth_ = tenth;
      std::fprintf(out_, "%s  %s\n", label_.c_str(), stats);
      std::fflush(out_);
    }
  }

  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  static std::string clock_text(double s) {
    const long t = static_cast<long>(s + 0.5);
    char buf[32];
    if (t >= 3600)
      std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
      std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
  }

 private:
  std::FILE* out_;
  ProgressStyle style_;
  std::string label_;
  std::size_t total_;
  Clock::time_point start_, last_draw_{};
  std::size_t last_tenth_ = 0;
};

}  // namespace ctnn::train
