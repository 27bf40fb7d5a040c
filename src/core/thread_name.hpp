// Names for the threads the library starts, so that `top -H`, `ps -L` and profilers tell them
// apart (a gateway's workers from its cache writer, say), and the priority of the ones that do
// background work.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <string_view>

namespace llm_caching::core {

/// Names the calling thread. Linux keeps 15 bytes of a name: longer ones are cut.
/// Every thread the library starts calls it first, so its TU (thread_name.cpp) is in every program
/// that starts one: that TU also makes spdlog's registry before main (see there why).
void name_this_thread(std::string_view name);

/// Whether make_this_thread_idle moved the calling thread to SCHED_IDLE.
inline thread_local bool this_thread_is_idle = false;

/// Moves the calling thread to SCHED_IDLE: it runs on a CPU that has nothing else to run, and a
/// thread that wakes there while it runs preempts it at once, so its bursts of work do not delay
/// a request (with yield_if_idle between units of work: see there). On a machine whose CPUs stay
/// busy it gets almost no CPU, so work that must not wait for long needs another way out (the
/// exchange's catch-up writer). One way: an unprivileged thread cannot leave SCHED_IDLE. false
/// when the system refuses (the thread then keeps its policy).
inline bool make_this_thread_idle() noexcept {
  const sched_param param{};
  this_thread_is_idle = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0;
  return this_thread_is_idle;
}

/// Called by an idle thread between units of work (an entry encoded), never with a lock held that
/// another thread may wait for: a yield on a busy machine lasts long. Waking preempts a running
/// idle thread, but a thread that wakes while the idle one is only runnable can find it picked
/// first (EEVDF picks among the threads that are owed CPU, whatever their policy), and it then
/// runs until it sleeps or the next tick. Yielding bounds that to one unit. A no-op on other
/// threads.
inline void yield_if_idle() noexcept {
  if (this_thread_is_idle) sched_yield();
}

}  // namespace llm_caching::core
