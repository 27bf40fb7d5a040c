// Progress of a long command (`cache export`, `warm`) on standard error: a bar redrawn in place
// (count, rate, ETA) on a terminal, plain lines at most once every few seconds otherwise (CI logs,
// pipes), so that a log stays readable and a terminal stays lively.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace llm_caching::cli {

struct ProgressOptions {
  std::string what = "entries";  ///< what is counted, e.g. "entries", "requests"
  std::FILE* out = stderr;
  /// A terminal gets the redrawn bar; else plain lines. Default: whether `out` is a terminal.
  int terminal = -1;  ///< -1: ask isatty; 0: plain; 1: bar
  /// How often a plain line is written (a bar is redrawn up to 10 times a second).
  std::chrono::milliseconds plain_interval{5000};
};

class Progress {
 public:
  /// total 0: unknown (no ETA, no bar; the count and rate only).
  Progress(std::uint64_t total, ProgressOptions options = {});
  /// `done` so far; `extra` is shown after the rate (e.g. a running cost). Cheap to call often.
  void update(std::uint64_t done, const std::string& extra = {});
  /// The last state, and a newline after a bar.
  void finish(std::uint64_t done, const std::string& extra = {});

  /// "1,234/s", "ETA 1m05s"-style pieces, exposed for tests.
  static std::string format_duration(double seconds);

 private:
  std::string line(std::uint64_t done, const std::string& extra) const;

  std::uint64_t total_;
  ProgressOptions options_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
};

}  // namespace llm_caching::cli
