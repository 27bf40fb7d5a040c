// The threads the exchange starts for its own work (the write-behind writers, the background
// refresh), each a one-thread Asio pool that names itself (docs/GATEWAY.md lists the names).
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <memory>

namespace llm_caching::exchange {

/// One thread for the exchange's own work, named `name` by the first task it runs (an Asio pool
/// starts its thread itself, which then carries its creator's name until that task has run).
/// idle: the thread moves to SCHED_IDLE first (logged at debug level when the system refuses).
std::unique_ptr<boost::asio::thread_pool> named_thread(const char* name, bool idle = false);

}  // namespace llm_caching::exchange
