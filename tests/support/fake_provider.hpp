// Test helper: start llm-caching-fake-provider on a free loopback port for one test (suite).
//   llmc_test::FakeProvider fake;                       // http://127.0.0.1:<port>
//   llmc_test::FakeProvider tls_fake({.tls = &certs});  // https, certificate from
//   make_test_certificates request.url = fake.base_url() + "/v1/chat/completions";
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "support/child_process.hpp"
#include "support/test_env.hpp"

namespace llmc_test {

/// Where the build put the fake provider (compile definition from tests/CMakeLists.txt).
inline constexpr const char* kFakeProviderPath = LLMC_FAKE_PROVIDER_PATH;

struct FakeProviderOptions {
  /// Serve https with this certificate (the caller keeps it alive); nullptr for plain http.
  const TestCertificates* tls = nullptr;
  /// Added to every answer (--delay-ms).
  std::chrono::milliseconds delay{0};
  /// 0 picks a free port; a fixed port lets a test restart the server at the same address.
  std::uint16_t port = 0;
};

class FakeProvider {
 public:
  explicit FakeProvider(FakeProviderOptions options = {});

  std::uint16_t port() const { return port_; }
  /// "127.0.0.1:<port>"
  std::string host_port() const;
  /// "http://127.0.0.1:<port>" or "https://127.0.0.1:<port>", no trailing slash.
  std::string base_url() const;
  /// GET /_stats: {"total", "routes", "behaviors", "connections"}. Opens its own connection,
  /// which the next /_stats answer counts.
  boost::json::object stats() const;
  /// POST /_reset: zeroes every counter (calls, connections, 429 budgets).
  void reset() const;
  /// SIGTERM, wait; returns the exit code (0 on a clean exit).
  int stop() { return process_.stop(); }

 private:
  boost::json::object call(const char* method, const char* path) const;

  FakeProviderOptions options_;
  ChildProcess process_;
  std::uint16_t port_ = 0;
};

/// A plain-http and an https fake provider whose certificate a test CA signed: what the suites
/// that exercise both transports share. Started on first use, stopped at process exit.
struct FakeProviderPair {
  TestCertificates certs = make_test_certificates();
  FakeProvider plain;
  FakeProvider tls{{.tls = &certs}};

  /// Zeroes both providers' counters.
  void reset() const {
    plain.reset();
    tls.reset();
  }
};
FakeProviderPair& shared_fake_providers();

}  // namespace llmc_test
