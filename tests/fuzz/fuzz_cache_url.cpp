// The cache URL parser (cache/cache_url.*): a URL from the environment or a config file. Any
// input is a backend configuration or a ConfigurationError, and a masked URL never shows the
// password's characters past the mask.
#include "cache/cache_url.hpp"
#include "llm_caching/errors.hpp"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace llm_caching;
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  try {
    const cache::BackendConfig config = cache::parse_cache_url(url);
    (void)cache::backend_identity(config);
    (void)cache::describe_config(config);
  } catch (const ConfigurationError&) {
  }
  (void)cache::mask_url_password(url);
  try {
    (void)cache::parse_byte_size(url, "fuzz");
  } catch (const ConfigurationError&) {
  }
  return 0;
}
