#include "support/redis_cluster.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace llmc_test {
namespace {

using namespace std::chrono_literals;

bool port_is_free(std::uint32_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

/// A free port whose cluster bus port (port + 10000) is free too.
std::uint16_t free_cluster_port() {
  for (int i = 0; i < 1000; ++i) {
    const std::uint16_t port = free_tcp_port();
    if (port + 10000u <= 65535u && port_is_free(port + 10000u)) return port;
  }
  throw std::runtime_error("no free port pair for a cluster node");
}

/// One line of CLUSTER NODES: its port, flags and slot ranges.
struct NodeLine {
  std::uint16_t port = 0;
  std::string flags;
  std::vector<std::pair<int, int>> ranges;
};

std::vector<NodeLine> parse_nodes(const std::string& text) {
  std::vector<NodeLine> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string field; fields >> field;) f.push_back(field);
    if (f.size() < 8) continue;
    NodeLine node;
    const std::string address = f[1].substr(0, f[1].find('@'));
    node.port = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    node.flags = f[2];
    for (std::size_t i = 8; i < f.size(); ++i) {
      if (f[i].starts_with('[')) continue;  // a slot being migrated
      const std::size_t dash = f[i].find('-');
      const int first = std::stoi(f[i].substr(0, dash));
      node.ranges.emplace_back(
          first, dash == std::string::npos ? first : std::stoi(f[i].substr(dash + 1)));
    }
    out.push_back(std::move(node));
  }
  return out;
}

std::string field(const std::string& info, const std::string& name) {
  const std::size_t at = info.find(name + ":");
  if (at == std::string::npos) return "";
  const std::size_t start = at + name.size() + 1;
  return info.substr(start, info.find_first_of("\r\n", start) - start);
}

/// A node certificate for both ends of the cluster bus (nodes present it as clients too, and
/// the test server certificates are for servers only), signed by the test CA.
RedisTls node_certificate(RedisTls tls) {
  const std::filesystem::path dir = std::filesystem::path(tls.ca_cert).parent_path();
  std::ofstream(dir / "node_ext.cnf")
      << "[v3_node]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
         "extendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = IP:127.0.0.1\n";
  run_command({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-subj", "/CN=llm-caching test cluster node", "-keyout",
               (dir / "node.key").string(), "-out", (dir / "node.csr").string()});
  run_command({"openssl", "x509", "-req", "-in", (dir / "node.csr").string(), "-CA", tls.ca_cert,
               "-CAkey", (dir / "ca.key").string(), "-set_serial", "11", "-days", "2", "-extfile",
               (dir / "node_ext.cnf").string(), "-extensions", "v3_node", "-out",
               (dir / "node.pem").string()});
  tls.server_cert = (dir / "node.pem").string();
  tls.server_key = (dir / "node.key").string();
  return tls;
}

}  // namespace

RedisCluster::RedisCluster(std::optional<RedisTls> tls) {
  require_program("redis-cli", "redis-tools");
  if (tls) tls_ = node_certificate(*tls);
  std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
  if (tls_) create = {"redis-cli", "--tls", "--cacert", tls_->ca_cert, "--cluster", "create"};
  for (int i = 0; i < 6; ++i) {
    nodes_.push_back(std::make_unique<RedisServer>(
        RedisServerOptions{.tls = tls_, .port = free_cluster_port(), .cluster = true}));
    alive_.push_back(true);
    create.push_back("127.0.0.1:" + std::to_string(nodes_.back()->port()));
  }
  create.insert(create.end(), {"--cluster-replicas", "1", "--cluster-yes"});
  run_command(create);
  wait_until_healthy();
}

RedisCluster::~RedisCluster() = default;

std::string RedisCluster::url() const {
  const std::string hosts = "127.0.0.1:" + std::to_string(nodes_[0]->port()) +
                            ",127.0.0.1:" + std::to_string(nodes_[1]->port());
  if (tls_) return "rediss+cluster://" + hosts + "/?ssl_ca_certs=" + tls_->ca_cert;
  return "redis+cluster://" + hosts;
}

std::size_t RedisCluster::live_node() const {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (alive_[i]) return i;
  }
  throw std::runtime_error("every cluster node is down");
}

std::string RedisCluster::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> with_c = {"-c"};
  with_c.insert(with_c.end(), args.begin(), args.end());
  return nodes_[live_node()]->cli(with_c);
}

std::vector<std::size_t> RedisCluster::masters() const {
  std::vector<std::size_t> out;
  for (const auto& line : parse_nodes(nodes_[live_node()]->cli({"CLUSTER", "NODES"}))) {
    if (line.flags.find("master") == std::string::npos || line.ranges.empty()) continue;
    if (line.flags.find("fail") != std::string::npos) continue;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]->port() == line.port) out.push_back(i);
    }
  }
  return out;
}

std::size_t RedisCluster::master_of(const std::string& key) const {
  const int slot = std::stoi(nodes_[live_node()]->cli({"CLUSTER", "KEYSLOT", key}));
  for (const auto& line : parse_nodes(nodes_[live_node()]->cli({"CLUSTER", "NODES"}))) {
    if (line.flags.find("master") == std::string::npos) continue;
    for (const auto& [first, last] : line.ranges) {
      if (slot < first || slot > last) continue;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->port() == line.port) return i;
      }
    }
  }
  throw std::runtime_error("no master serves the slot of " + key);
}

void RedisCluster::kill(std::size_t i) {
  nodes_[i]->kill();
  alive_[i] = false;
}

void RedisCluster::wait_until_replicas_listed() const {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  const auto live = static_cast<std::size_t>(std::count(alive_.begin(), alive_.end(), true));
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    bool listed = true;
    for (std::size_t i = 0; i < nodes_.size() && listed; ++i) {
      if (!alive_[i]) continue;
      // redis-cli prints each element on a line of its own: a node is [host, port, id, {}].
      last = nodes_[i]->cli({"CLUSTER", "SLOTS"});
      std::istringstream lines(last);
      std::size_t ids = 0;
      for (std::string line; std::getline(lines, line);) {
        if (line.size() == 40 && line.find_first_not_of("0123456789abcdef") == std::string::npos)
          ++ids;
      }
      listed = ids == live;
    }
    if (listed) return;
    std::this_thread::sleep_for(100ms);
  }
  throw std::runtime_error("CLUSTER SLOTS did not list every replica: " + last);
}

void RedisCluster::wait_until_healthy() const {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    bool healthy = true;
    try {
      for (std::size_t i = 0; i < nodes_.size() && healthy; ++i) {
        if (!alive_[i]) continue;
        const std::string info = nodes_[i]->cli({"CLUSTER", "INFO"});
        const std::string replication = nodes_[i]->cli({"INFO", "replication"});
        last = "node " + std::to_string(i) + ": " + info + "\n" + replication;
        healthy =
            field(info, "cluster_state") == "ok" && field(info, "cluster_slots_ok") == "16384";
        if (field(replication, "role") == "slave") {
          healthy = healthy && field(replication, "master_link_status") == "up";
        } else if (field(replication, "connected_slaves") == "1") {
          // The replica has every write the master made (slave0:...,offset=N,...).
          const std::string slave = field(replication, "slave0");
          const std::size_t at = slave.find("offset=");
          const std::string offset =
              at == std::string::npos ? "" : slave.substr(at + 7, slave.find(',', at) - at - 7);
          healthy = healthy && offset == field(replication, "master_repl_offset");
        }
      }
    } catch (const std::exception& e) {
      healthy = false;
      last = e.what();
    }
    if (healthy) return;
    std::this_thread::sleep_for(100ms);
  }
  throw std::runtime_error("the cluster did not become healthy: " + last);
}

}  // namespace llmc_test
