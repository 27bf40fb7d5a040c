// The gateway's HTTP/1.1 server: one io_context and one SO_REUSEPORT acceptor per worker thread;
// the connections that come in on one CPU share a worker, within a limit of imbalance;
// keep-alive, pipelining, body limit, timeouts, graceful shutdown. Beast stays in server.cpp.
#pragma once

#include "gateway/gateway.hpp"
#include "providers/http_client.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace llm_caching::gateway {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;                       ///< 0 picks a free port (see Server::port())
  unsigned threads = 0;                            ///< 0 = one per core
  std::size_t body_limit = std::size_t{32} << 20;  ///< larger request bodies get 413
  /// Longest wait for a request to arrive complete on a connection (keep-alive idle included).
  std::chrono::milliseconds request_timeout{60000};
  /// Longest wait for a client to accept response bytes.
  std::chrono::milliseconds write_timeout{60000};
  /// After SIGTERM, requests in flight get this long to finish before the process exits.
  std::chrono::milliseconds shutdown_grace{30000};
  /// Upstream connect and silence timeouts (a silent upstream beyond read_timeout -> 504).
  providers::HttpClientOptions upstream;
};

class Server {
 public:
  Server(ServerOptions options, std::shared_ptr<Gateway> gateway);
  ~Server();  ///< shuts down and waits
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts the worker threads. Throws std::system_error when the address cannot be
  /// bound. Returns the bound port.
  std::uint16_t start();
  std::uint16_t port() const noexcept { return port_; }

  /// Stops accepting, closes idle connections, lets requests in flight finish (each connection
  /// closes after its current response). Thread-safe, idempotent, returns at once.
  void shutdown();
  /// Blocks until every worker has finished (after shutdown()).
  void wait();

  struct Worker;

 private:
  ServerOptions options_;
  std::shared_ptr<Gateway> gateway_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::uint16_t port_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace llm_caching::gateway
