#include "core/thread_name.hpp"

#include <spdlog/spdlog.h>

#include <string>

namespace llm_caching::core {
namespace {

// spdlog's registry (the default logger every spdlog::info goes through) is a function-local
// static inside libspdlog, made by the first call that logs. Left to that, it was made by
// whichever thread logged first: a Redis client's I/O thread, say, when its server went away at
// the end of a test. Two faults followed:
//  - at exit, statics are destroyed in the reverse order of their making, so the registry, made
//    after the default runtime, was destroyed before it, while the runtime's threads (Redis
//    clients, the ledger's writer) were still running and logging until its destructor joined
//    them: a use after free (ASan's heap-use-after-free at exit, TSan's races between the main
//    thread's exit handlers and an `llmc-redis` thread in RedisHome::on_dropped);
//  - the threads that logged next saw it made through the static's guard, read inside libspdlog,
//    which ThreadSanitizer does not instrument: TSan saw no order between its making on one
//    thread and its reads on another.
// Made here, during static initialisation: before main and before any thread of ours starts
// (thread creation orders the two, visibly to TSan), and destroyed after every static made
// later, the default runtime included.
[[maybe_unused]] const bool registry_made_first = spdlog::default_logger_raw() != nullptr;

}  // namespace

void name_this_thread(std::string_view name) {
  const std::string kept(name.substr(0, 15));
  pthread_setname_np(pthread_self(), kept.c_str());
}

}  // namespace llm_caching::core
