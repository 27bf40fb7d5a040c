// Test helper: redis-server and redis-sentinel on free loopback ports in a temp dir (optionally
// TLS-only, with ACL users), stopped on destruction. A missing binary is an error naming the
// Debian package, so Redis tests fail rather than skip on a machine without Redis.
#pragma once

#include "support/child_process.hpp"
#include "support/test_env.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llmc_test {

struct RedisTls {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
  bool require_client_cert = false;
};

struct RedisAclUser {
  std::string name;
  std::string password;
};

struct RedisServerOptions {
  std::optional<RedisTls> tls;                   ///< TLS only (the plain port is disabled)
  std::vector<RedisAclUser> acl_users;           ///< extra users with full access
  std::string requirepass;                       ///< password of the default user
  std::optional<std::uint16_t> replica_of_port;  ///< replicate 127.0.0.1:<port>
  std::optional<std::uint16_t> port;             ///< default: a free port
  bool cluster = false;  ///< cluster-enabled, 1 s node timeout (support/redis_cluster.hpp)
  /// appendonly with fsync on every write: what was written survives kill() (the ledger's
  /// spill test); default off, as a cache needs no persistence.
  bool persistent = false;
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(RedisServer&&) noexcept;

  std::uint16_t port() const { return port_; }
  /// redis://127.0.0.1:<port> (no credentials).
  std::string url() const;
  /// SIGKILL, like a crash. start() brings it back on the same port with the same data dir.
  void kill();
  void start();
  /// redis-cli against the server (with --tls and the test CA for a TLS server); returns its
  /// stdout, trimmed.
  std::string cli(const std::vector<std::string>& args) const;

 private:
  RedisServerOptions options_;
  std::unique_ptr<TempDir> dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

class RedisSentinel {
 public:
  /// Monitors 127.0.0.1:<master_port> as `master_name` with quorum 2 and short timeouts.
  RedisSentinel(std::string master_name, std::uint16_t master_port);
  ~RedisSentinel();
  RedisSentinel(RedisSentinel&&) noexcept;
  std::uint16_t port() const { return port_; }
  std::string cli(const std::vector<std::string>& args) const;

 private:
  std::unique_ptr<TempDir> dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

/// Throws std::runtime_error naming the Debian package when `program` is not in PATH.
void require_program(const std::string& program, const std::string& debian_package);

/// Runs a command line and returns stdout (trimmed); throws when it exits non-zero.
std::string run_command(const std::vector<std::string>& argv);

}  // namespace llmc_test
