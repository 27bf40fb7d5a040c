// Names for the threads the library starts, so that `top -H`, `ps -L` and profilers tell them
// apart (a gateway's workers from its cache writer, say).
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace llm_caching::core {

/// Names the calling thread. Linux keeps 15 bytes of a name: longer ones are cut.
inline void name_this_thread(std::string_view name) {
  const std::string kept(name.substr(0, 15));
  pthread_setname_np(pthread_self(), kept.c_str());
}

}  // namespace llm_caching::core
