// Small test helpers: temporary directories, free loopback ports, scoped environment variables,
// TLS certificates made with the openssl CLI, and running an awaitable to completion.
#pragma once

#include "cache/run_blocking.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llmc_test {

/// A fresh directory under the system temp dir, removed with its content on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
/// Nothing listens on it, so connecting to it is refused.
std::uint16_t free_tcp_port();

/// What a shell command printed on its standard output and how it ended.
struct ShellResult {
  int exit_code = -1;  ///< -1 when it did not exit (a signal) or could not start
  std::string output;
};
/// Runs `command` with /bin/sh and reads its standard output to the end (add `2>&1` to the
/// command for its standard error too).
ShellResult run_shell(const std::string& command);

/// Sets (or, with nullopt, unsets) an environment variable; restores the old value on exit.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

/// A throw-away CA and a server certificate signed by it, as PEM files in a temp dir.
struct TestCertificates {
  TempDir dir;
  std::string ca_cert;      // trust this (HttpClientOptions::ca_file)
  std::string server_cert;  // server chain: --tls-cert
  std::string server_key;   // --tls-key
};

/// Makes the certificates with the `openssl` CLI (EC P-256, valid 2 days). The server
/// certificate's subjectAltName lists `subject_alt_names` ("IP:127.0.0.1", "DNS:localhost").
/// Throws std::runtime_error with openssl's output when a command fails.
TestCertificates make_test_certificates(std::vector<std::string> subject_alt_names = {
                                            "IP:127.0.0.1", "DNS:localhost"});

/// Runs `io` until `task` completes and returns its result (or rethrows). Other work on `io`
/// (a server or proxy coroutine in the test) runs meanwhile and stays pending afterwards.
template <class T>
T run_sync(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr error, T value) {
    failure = error;
    if (!error) result.emplace(std::move(value));
    io.stop();
  });
  io.restart();
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

inline void run_sync(boost::asio::io_context& io, boost::asio::awaitable<void> task) {
  std::exception_ptr failure;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr error) {
    failure = error;
    io.stop();
  });
  io.restart();
  io.run();
  if (failure) std::rethrow_exception(failure);
}

/// Runs `task` on `io` until `io` has no work left, the task's and whatever it started (unlike
/// run_sync, which stops at the task's end); returning at all shows that nothing the task left
/// behind (an idle connection, a timer) keeps `io` busy. (cache::run_blocking on `io`.)
template <class T>
T run_to_completion(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  return llm_caching::cache::run_blocking(io, std::move(task));
}

}  // namespace llmc_test
