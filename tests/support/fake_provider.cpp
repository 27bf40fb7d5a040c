#include "support/fake_provider.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include <stdexcept>

#include "providers/http_client.hpp"

namespace llmc_test {

namespace {

std::vector<std::string> command_line(const FakeProviderOptions& options) {
  std::vector<std::string> argv{kFakeProviderPath, "--listen",
                                "127.0.0.1:" + std::to_string(options.port)};
  if (options.tls) {
    argv.insert(argv.end(),
                {"--tls-cert", options.tls->server_cert, "--tls-key", options.tls->server_key});
  }
  if (options.delay.count() > 0) {
    argv.insert(argv.end(), {"--delay-ms", std::to_string(options.delay.count())});
  }
  return argv;
}

}  // namespace

FakeProvider::FakeProvider(FakeProviderOptions options)
    : options_(options), process_(command_line(options), "listening on") {
  const std::string& line = process_.ready_line();  // "listening on 127.0.0.1:PORT"
  port_ = static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
}

std::string FakeProvider::host_port() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::string FakeProvider::base_url() const {
  return (options_.tls ? "https://" : "http://") + host_port();
}

boost::json::object FakeProvider::call(const char* method, const char* path) const {
  namespace providers = llm_caching::providers;
  boost::asio::io_context io;
  providers::HttpClientOptions client_options;
  if (options_.tls) client_options.ca_file = options_.tls->ca_cert;
  providers::HttpClient client(io.get_executor(), client_options);
  providers::HttpRequest request;
  request.method = method;
  request.url = base_url() + path;
  const auto response = run_sync(io, client.send(std::move(request)));
  if (response.status != 200) {
    throw std::runtime_error(std::string("fake provider ") + path + " answered " +
                             std::to_string(response.status));
  }
  return boost::json::parse(response.body).as_object();
}

boost::json::object FakeProvider::stats() const {
  return call("GET", "/_stats");
}
void FakeProvider::reset() const {
  call("POST", "/_reset");
}

FakeProviderPair& shared_fake_providers() {
  static FakeProviderPair pair;
  return pair;
}

}  // namespace llmc_test
