// The TLS context of `rediss://` connections, apart from the socket code so that OpenSSL setup
// errors are reported in configuration terms.
#include "cache/redis_connection.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace llm_caching::cache {
namespace {

void require_readable(const std::string& path, std::string_view parameter) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw ConfigurationError(
        fmt::format("Redis TLS: {} '{}' is not a readable file", parameter, path));
  }
}

}  // namespace

std::unique_ptr<asio::ssl::context> make_redis_tls_context(const RedisTlsOptions& tls) {
  auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (!tls.ca_file.empty()) {
    require_readable(tls.ca_file, "ssl_ca_certs");
    context->load_verify_file(tls.ca_file, ec);
    if (ec) {
      throw ConfigurationError(
          fmt::format("Redis TLS: cannot load ssl_ca_certs '{}': {}", tls.ca_file, ec.message()));
    }
  } else {
    context->set_default_verify_paths(ec);
    if (ec)
      throw ConfigurationError("Redis TLS: cannot load the system trust store: " + ec.message());
  }
  if (!tls.cert_file.empty()) {
    require_readable(tls.cert_file, "ssl_certfile");
    require_readable(tls.key_file, "ssl_keyfile");
    context->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) {
      throw ConfigurationError(
          fmt::format("Redis TLS: cannot load ssl_certfile '{}': {}", tls.cert_file, ec.message()));
    }
    context->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    if (ec) {
      throw ConfigurationError(
          fmt::format("Redis TLS: cannot load ssl_keyfile '{}': {}", tls.key_file, ec.message()));
    }
  }
  context->set_verify_mode(tls.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
  return context;
}

}  // namespace llm_caching::cache
