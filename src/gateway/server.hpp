// The gateway's HTTP/1.1 server: one io_context and one SO_REUSEPORT acceptor per worker thread;
// the connections that come in on one CPU share a worker, within a limit of imbalance;
// keep-alive, pipelining, body limit, timeouts, graceful shutdown. Beast stays in server.cpp.
#pragma once

#include "gateway/gateway.hpp"
#include "gateway/limits.hpp"
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
  std::uint16_t port = 8080;  ///< 0 picks a free port (see Server::port())
  unsigned threads = 0;       ///< 0 = one per core
  /// Larger request bodies get 413. 8 MiB: a body is held about three times while it is
  /// parsed, keyed and forwarded, so this times the requests in flight is the memory at risk;
  /// it still carries a 2M-token text prompt or several inline images (docs/SECURITY-MODEL.md).
  std::size_t body_limit = std::size_t{8} << 20;
  /// All request bodies held at once, across connections; past it a request gets 503 with
  /// Retry-After (a keyless client could otherwise hold body_limit per connection). Each worker
  /// thread holds an equal share of it.
  std::size_t max_body_bytes_in_flight = std::size_t{128} << 20;
  /// Open client connections; past it a new one gets 503 with Retry-After and is closed.
  /// 0: from the open-file limit (default_max_connections).
  std::size_t max_connections = 0;
  /// Header fields in a request (more: 431), and the bytes of its head (more: 431).
  std::size_t max_header_fields = 100;
  std::size_t header_limit = 64 * 1024;
  /// The request line (method, target, version); longer: 414. 8 KiB, as nginx's default buffer.
  std::size_t max_request_line = 8 * 1024;
  /// Longest wait for a request's first byte on a connection (keep-alive idle included), then
  /// for its body once the head is in.
  std::chrono::milliseconds request_timeout{60000};
  /// Once a request's first byte has come, its head must be complete within this, else 408 and
  /// the connection closes: a slowloris client, which sends its head a byte at a time to hold a
  /// connection for ever, holds one for this long. Clients send a head in one write.
  std::chrono::milliseconds header_timeout{10000};
  /// Longest wait for a client to accept response bytes.
  std::chrono::milliseconds write_timeout{60000};
  /// After SIGTERM, requests in flight get this long to finish before the process exits.
  std::chrono::milliseconds shutdown_grace{30000};
  /// Upstream connect and silence timeouts (a silent upstream beyond read_timeout -> 504).
  providers::HttpClientOptions upstream;
};

/// Files kept for the process's own use (cache, logs, listeners) when the connection limit comes
/// from the open-file limit, and the most connections that default ever allows.
inline constexpr std::uint64_t kReservedFiles = 128;
inline constexpr std::uint64_t kMostDefaultConnections = 10000;

/// Raises the soft open-file limit to the hard one; returns the soft limit in force after.
std::uint64_t raise_open_file_limit();
/// (soft open-file limit - kReservedFiles) / 2, from 16 to kMostDefaultConnections: each
/// client connection may need an upstream connection too.
std::size_t default_max_connections();

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
