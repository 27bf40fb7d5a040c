#include "exchange/named_thread.hpp"

#include "core/thread_name.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace llm_caching::exchange {

std::unique_ptr<boost::asio::thread_pool> named_thread(const char* name, bool idle) {
  auto pool = std::make_unique<boost::asio::thread_pool>(1);
  boost::asio::post(*pool, [name, idle] {
    // The priority first: a thread that shows its name has its policy too.
    if (idle && !core::make_this_thread_idle()) {
      spdlog::debug("{}: could not move to SCHED_IDLE; it runs at normal priority", name);
    }
    core::name_this_thread(name);
  });
  return pool;
}

}  // namespace llm_caching::exchange
