#include "support/redis_server.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace llmc_test {
namespace {

std::string quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

void require_program(const std::string& program, const std::string& debian_package) {
  const std::string check = "command -v " + quote(program) + " > /dev/null 2>&1";
  if (std::system(check.c_str()) != 0) {
    throw std::runtime_error(
        program + " is not installed; the Redis tests need it: apt-get install " + debian_package);
  }
}

std::string run_command(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& arg : argv) line += quote(arg) + " ";
  FILE* pipe = ::popen((line + "2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + line);
  std::string output;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  if (status != 0) throw std::runtime_error(line + "failed: " + output);
  return output;
}

RedisServer::RedisServer(RedisServerOptions options)
    : options_(std::move(options)), dir_(std::make_unique<TempDir>()) {
  require_program("redis-server", "redis-server");
  port_ = options_.port ? *options_.port : free_tcp_port();
  std::string config = "bind 127.0.0.1\nsave \"\"\nprotected-mode no\n";
  config += options_.persistent ? "appendonly yes\nappendfsync always\n" : "appendonly no\n";
  config += "dir " + dir_->path().string() + "\n";
  if (options_.tls) {
    config += "port 0\ntls-port " + std::to_string(port_) + "\n";
    config += "tls-cert-file " + options_.tls->server_cert + "\n";
    config += "tls-key-file " + options_.tls->server_key + "\n";
    config += "tls-ca-cert-file " + options_.tls->ca_cert + "\n";
    config += std::string("tls-auth-clients ") +
              (options_.tls->require_client_cert ? "yes" : "no") + "\n";
  } else {
    config += "port " + std::to_string(port_) + "\n";
  }
  if (!options_.requirepass.empty()) config += "requirepass " + options_.requirepass + "\n";
  for (const auto& user : options_.acl_users) {
    config += "user " + user.name + " on >" + user.password + " ~* &* +@all\n";
  }
  if (options_.cluster) {
    // A short node timeout: a killed master's replica takes over within about two seconds.
    config +=
        "cluster-enabled yes\ncluster-config-file nodes.conf\n"
        "cluster-node-timeout 1000\ncluster-replica-validity-factor 0\n";
    // TLS only: replication and the bus too, on a named bus port (it would be 0 + 10000).
    if (options_.tls) {
      config += "tls-cluster yes\ntls-replication yes\ncluster-port " +
                std::to_string(port_ + 10000) + "\n";
    }
  }
  if (options_.replica_of_port) {
    config += "replicaof 127.0.0.1 " + std::to_string(*options_.replica_of_port) + "\n";
  }
  write_file(dir_->file("redis.conf"), config);
  start();
}

RedisServer::~RedisServer() = default;
RedisServer::RedisServer(RedisServer&&) noexcept = default;

void RedisServer::start() {
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"redis-server", dir_->file("redis.conf")},
      "Ready to accept connections", std::chrono::seconds(10));
}

void RedisServer::kill() {
  if (!process_) return;
  ::kill(process_->pid(), SIGKILL);
  process_->stop();
  process_.reset();
}

std::string RedisServer::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_);
}

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (!options_.requirepass.empty()) {
    argv.insert(argv.end(), {"--no-auth-warning", "-a", options_.requirepass});
  }
  if (options_.tls) {
    // The server's own certificate doubles as a client certificate where one is required.
    argv.insert(argv.end(), {"--tls", "--cacert", options_.tls->ca_cert, "--cert",
                             options_.tls->server_cert, "--key", options_.tls->server_key});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

RedisSentinel::RedisSentinel(std::string master_name, std::uint16_t master_port)
    : dir_(std::make_unique<TempDir>()) {
  require_program("redis-sentinel", "redis-sentinel");
  port_ = free_tcp_port();
  const std::string monitor = master_name + " 127.0.0.1 " + std::to_string(master_port);
  write_file(dir_->file("sentinel.conf"),
             "bind 127.0.0.1\nprotected-mode no\nport " + std::to_string(port_) + "\ndir " +
                 dir_->path().string() + "\nsentinel monitor " + monitor + " 2\n" +
                 "sentinel down-after-milliseconds " + master_name + " 1000\n" +
                 "sentinel failover-timeout " + master_name + " 5000\n" +
                 "sentinel parallel-syncs " + master_name + " 1\n");
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"redis-sentinel", dir_->file("sentinel.conf")}, "+monitor master",
      std::chrono::seconds(10));
}

RedisSentinel::~RedisSentinel() = default;
RedisSentinel::RedisSentinel(RedisSentinel&&) noexcept = default;

std::string RedisSentinel::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

}  // namespace llmc_test
