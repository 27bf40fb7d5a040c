#include "support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace llmc_test {

struct ChildProcess::State {
  pid_t pid = -1;
  int stdout_fd = -1;
  std::string ready_line;
  std::thread drainer;
  std::optional<int> exit_code;
};

namespace {

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

/// Reads from `fd` until a full line containing `marker` arrives. Returns that line.
std::string wait_for_marker(int fd, std::string_view marker, std::chrono::milliseconds timeout,
                            const std::string& program) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string pending;
  for (;;) {
    for (std::size_t end; (end = pending.find('\n')) != std::string::npos;) {
      std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      if (line.find(marker) != std::string::npos) return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw std::runtime_error(program + " did not print '" + std::string(marker) + "' within " +
                               std::to_string(timeout.count()) + " ms");
    }
    pollfd poller{fd, POLLIN, 0};
    const int ready = ::poll(&poller, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) throw std::runtime_error(errno_text("poll"));
    if (ready <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw std::runtime_error(program + " exited before printing '" + std::string(marker) + "'");
    }
    pending.append(buffer, static_cast<std::size_t>(n));
  }
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string_view ready_marker,
                           std::chrono::milliseconds ready_timeout)
    : state_(std::make_unique<State>()) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess needs a program");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  std::vector<char*> args;
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  const int rc = ::posix_spawnp(&state_->pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  state_->stdout_fd = pipe_fds[0];
  if (rc != 0) {
    ::close(state_->stdout_fd);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  try {
    state_->ready_line = wait_for_marker(state_->stdout_fd, ready_marker, ready_timeout, argv[0]);
  } catch (...) {
    stop();
    throw;
  }
  state_->drainer = std::thread([fd = state_->stdout_fd] {
    char buffer[4096];
    while (::read(fd, buffer, sizeof buffer) > 0 || errno == EINTR) {
    }
  });
}

ChildProcess::~ChildProcess() {
  if (state_) stop();
}

ChildProcess::ChildProcess(ChildProcess&&) noexcept = default;
ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (state_) stop();
    state_ = std::move(other.state_);
  }
  return *this;
}

pid_t ChildProcess::pid() const {
  return state_->pid;
}
const std::string& ChildProcess::ready_line() const {
  return state_->ready_line;
}

int ChildProcess::stop() {
  if (state_->exit_code) return *state_->exit_code;
  int status = 0;
  if (state_->pid > 0) {
    ::kill(state_->pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    pid_t done = 0;
    while ((done = ::waitpid(state_->pid, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (done == 0) {
      ::kill(state_->pid, SIGKILL);
      ::waitpid(state_->pid, &status, 0);
    }
  }
  // The child is gone, so the drainer sees EOF and ends.
  if (state_->drainer.joinable()) state_->drainer.join();
  if (state_->stdout_fd >= 0) ::close(state_->stdout_fd);
  state_->stdout_fd = -1;
  state_->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return *state_->exit_code;
}

}  // namespace llmc_test
