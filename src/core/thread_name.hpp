// Names for the threads the library starts, so that `top -H`, `ps -L` and profilers tell them
// apart (a gateway's workers from its cache writer, say), and the priority of the ones that do
// background work.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <string>
#include <string_view>

namespace llm_caching::core {

/// Names the calling thread. Linux keeps 15 bytes of a name: longer ones are cut.
inline void name_this_thread(std::string_view name) {
  const std::string kept(name.substr(0, 15));
  pthread_setname_np(pthread_self(), kept.c_str());
}

/// Moves the calling thread to SCHED_IDLE: it runs on a CPU that has nothing else to run, and a
/// thread that wakes there preempts it at once, so its bursts of work never delay a request. It
/// is not starved (it keeps a small share of a busy CPU). One way: an unprivileged thread cannot
/// leave SCHED_IDLE. false when the system refuses (the thread then keeps its policy).
inline bool make_this_thread_idle() noexcept {
  const sched_param param{};
  return pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0;
}

}  // namespace llm_caching::core
