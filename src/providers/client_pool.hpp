// A runtime's provider connections (llm_caching/runtime.hpp): one I/O thread with one HttpClient
// (a keep-alive pool per host) per distinct set of client options, shared by every library call,
// sync or awaitable, on any thread. A client reads the proxy and trust-store variables once, when
// the pool makes it. Without it each call opened its own client, so every miss paid a TCP and TLS
// handshake (100 misses, 101 connections); through it 100 sequential misses use one.
#pragma once

#include "providers/http_client.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>

namespace llm_caching::providers {

class ClientPool {
 public:
  ClientPool();
  /// Stops the I/O thread (requests still in flight fail) and closes the connections.
  ~ClientPool();
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  /// Sends `request` on the pool's thread, over the client for `options`, and resumes the
  /// caller on its own executor. Throws as HttpClient::send does.
  boost::asio::awaitable<HttpResponse> send(HttpRequest request, const HttpClientOptions& options);

  /// Connections opened so far by the clients of this pool (tests, metrics).
  std::size_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llm_caching::providers
