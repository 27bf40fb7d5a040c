#include "cli/progress.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>

namespace llm_caching::cli {

Progress::Progress(std::uint64_t total, ProgressOptions options)
    : total_(total),
      options_(std::move(options)),
      terminal_(options_.terminal < 0 ? ::isatty(::fileno(options_.out)) == 1
                                      : options_.terminal == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

std::string Progress::format_duration(double seconds) {
  const auto s = static_cast<std::int64_t>(std::max(0.0, seconds) + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string Progress::line(std::uint64_t done, const std::string& extra) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  std::string out;
  if (total_ > 0 && terminal_) {
    constexpr std::uint64_t kWidth = 30;
    const std::uint64_t filled = std::min(kWidth, done * kWidth / total_);
    out = fmt::format("[{}{}] ", std::string(filled, '#'), std::string(kWidth - filled, '.'));
  }
  out += total_ > 0 ? fmt::format("{}/{} {}", done, total_, options_.what)
                    : fmt::format("{} {}", done, options_.what);
  out += fmt::format(", {:.0f}/s", rate);
  if (total_ > 0 && rate > 0 && done < total_) {
    out += ", ETA " + format_duration(static_cast<double>(total_ - done) / rate);
  }
  if (!extra.empty()) out += ", " + extra;
  return out;
}

void Progress::update(std::uint64_t done, const std::string& extra) {
  const auto now = std::chrono::steady_clock::now();
  const auto interval = terminal_ ? std::chrono::milliseconds(100) : options_.plain_interval;
  if (now - last_ < interval) return;
  last_ = now;
  if (terminal_) {
    // \r and clear to the end of the line: the bar is redrawn in place.
    fmt::print(options_.out, "\r{}\x1b[K", line(done, extra));
    drawn_ = true;
  } else {
    fmt::print(options_.out, "{}\n", line(done, extra));
  }
  std::fflush(options_.out);
}

void Progress::finish(std::uint64_t done, const std::string& extra) {
  if (terminal_) {
    fmt::print(options_.out, "\r{}\x1b[K\n", line(done, extra));
  } else if (drawn_ || done > 0) {
    fmt::print(options_.out, "{}\n", line(done, extra));
  }
  std::fflush(options_.out);
}

}  // namespace llm_caching::cli
