#include "providers/client_pool.hpp"

#include "core/thread_name.hpp"

#include <openssl/ssl.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace llm_caching::providers {

namespace {

/// Options that share connections: everything that changes how a connection is made or read.
bool same_client(const HttpClientOptions& a, const HttpClientOptions& b) {
  return a.connect_timeout == b.connect_timeout && a.read_timeout == b.read_timeout &&
         a.ca_file == b.ca_file && a.verify_peer == b.verify_peer &&
         a.max_idle_per_host == b.max_idle_per_host && a.idle_timeout == b.idle_timeout &&
         a.max_response_bytes == b.max_response_bytes;
}

}  // namespace

struct ClientPool::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread;
  mutable std::mutex mutex;
  struct Client {
    HttpClientOptions options;
    std::unique_ptr<HttpClient> client;
  };
  /// Few distinct option sets exist in a process (usually one): a vector is enough.
  std::vector<Client> clients;

  HttpClient& client_for(const HttpClientOptions& options) {
    std::lock_guard lock(mutex);
    for (Client& known : clients) {
      if (same_client(known.options, options)) {
        return *known.client;
      }
    }
    // Throws ConfigurationError (unreadable CA file, bad proxy variable) before any I/O.
    clients.push_back({options, std::make_unique<HttpClient>(io.get_executor(), options)});
    return *clients.back().client;
  }
};

ClientPool::ClientPool() : impl_(std::make_unique<Impl>()) {
  // OpenSSL's exit handler registered now, before the pool's owner's (a static runtime's): at
  // exit it runs after the pool's thread is joined, whose thread-local OpenSSL state (error
  // queue, random generator) its own end then frees. The other way round it was left behind.
  OPENSSL_init_ssl(0, nullptr);
  impl_->thread = std::thread([impl = impl_.get()] {
    core::name_this_thread("llmc-http");
    impl->io.run();
  });
}

ClientPool::~ClientPool() {
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->clients.clear();  // after the thread: nothing runs on their sockets any more
}

asio::awaitable<HttpResponse> ClientPool::send(HttpRequest request,
                                               const HttpClientOptions& options) {
  HttpClient& client = impl_->client_for(options);
  // Runs on the pool's thread; the result comes back on the caller's executor.
  co_return co_await asio::co_spawn(impl_->io.get_executor(), client.send(std::move(request)),
                                    asio::use_awaitable);
}

std::size_t ClientPool::connections_opened() const {
  std::lock_guard lock(impl_->mutex);
  std::size_t total = 0;
  for (const auto& entry : impl_->clients) total += entry.client->connections_opened();
  return total;
}

}  // namespace llm_caching::providers
