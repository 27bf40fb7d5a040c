#include "cache/clear_watch.hpp"

#include "cache/run_blocking.hpp"
#include "core/thread_name.hpp"

#include <utility>

namespace llm_caching::cache {

ClearWatch::ClearWatch(std::shared_ptr<Backend> backend, std::chrono::milliseconds interval,
                       Callbacks callbacks)
    : backend_(std::move(backend)),
      interval_(interval),
      callbacks_(std::move(callbacks)),
      thread_([this] { run(); }) {}

ClearWatch::~ClearWatch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ClearWatch::check() {
  try {
    const std::uint64_t mark = run_blocking(backend_->read_clear_mark());
    if (last_ != mark) {
      last_ = mark;
      callbacks_.on_change();
    }
  } catch (...) {
    if (callbacks_.on_failure) callbacks_.on_failure();
  }
}

void ClearWatch::run() {
  core::name_this_thread("llmc-clearwatch");
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    check();
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
  lock.unlock();
  check();  // the last counts (Redis); a change now no longer matters, but costs nothing
}

}  // namespace llm_caching::cache
