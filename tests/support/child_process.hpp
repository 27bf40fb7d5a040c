// Test helper: run a server process, wait until it says it is ready, stop it on destruction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmc_test {

class ChildProcess {
 public:
  /// Starts argv[0] (searched in PATH when it has no '/') with the given arguments and reads
  /// its stdout until a line contains `ready_marker`. Throws std::runtime_error when the
  /// process cannot start, exits first, or stays silent for `ready_timeout`. Later stdout is
  /// drained in the background so the child never blocks on a full pipe; stderr is inherited.
  explicit ChildProcess(std::vector<std::string> argv,
                        std::string_view ready_marker = "listening on",
                        std::chrono::milliseconds ready_timeout = std::chrono::seconds(10));
  /// Same as stop(); never throws.
  ~ChildProcess();
  ChildProcess(ChildProcess&&) noexcept;
  ChildProcess& operator=(ChildProcess&&) noexcept;

  pid_t pid() const;
  /// The stdout line that contained the marker, without the newline.
  const std::string& ready_line() const;
  /// Sends SIGTERM, waits up to 5 s (then SIGKILL) and returns the exit code, or 128+signal
  /// when killed by a signal. Idempotent.
  int stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace llmc_test
