// Which malloc the program runs on, for --version: a build without jemalloc (a sanitizer build,
// or -DLLM_CACHING_JEMALLOC=OFF) should be easy to tell apart from a release build.
#include "cli/commands.hpp"

#ifdef LLMC_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace llm_caching::cli {

std::string allocator_description() {
#ifdef LLMC_JEMALLOC
  const char* version = nullptr;
  std::size_t size = sizeof(version);
  // Asking jemalloc itself proves it is the malloc in use, not just a linked library.
  if (mallctl("version", &version, &size, nullptr, 0) != 0 || version == nullptr) {
    return "jemalloc (version unknown)";
  }
  std::string text(version);
  text = text.substr(0, text.find('-'));  // "5.3.0-0-g54eaed1d..." -> "5.3.0"
  return "jemalloc " + text;
#else
  return "glibc malloc";
#endif
}

}  // namespace llm_caching::cli
