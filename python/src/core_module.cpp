// llm_caching._core: the Python front's way into the C++ library. One call: a provider request
// as an SDK built it, run through cached_http_call on the module's I/O thread; the answer (or
// the error) reaches Python through a callback that takes the GIL. C++ never holds the GIL while
// it works: the caller only posts, and the synchronous form releases it.
#include "llm_caching/budget.hpp"
#include "llm_caching/cache_mode.hpp"
#include "llm_caching/embed.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/http_call.hpp"

#include <nanobind/nanobind.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <thread>

namespace nb = nanobind;
namespace asio = boost::asio;
using namespace llm_caching;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::chrono::milliseconds seconds_to_ms(double seconds, const char* name) {
  if (!std::isfinite(seconds) || seconds < 0) {
    throw ConfigurationError(std::string(name) + " must be a number of seconds >= 0");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

/// The options of one cached_agent_run, made once and shared by each of its provider calls.
struct CallOptions {
  RunOptions run;
};

CallOptions make_options(std::string cache_url, std::optional<std::string> mode,
                         std::string namespace_, double ttl, double max_wait, double initial_wait,
                         bool strict_cache, bool coalesce,
                         std::optional<double> stale_while_revalidate,
                         std::optional<double> stale_if_error,
                         std::map<std::string, std::array<double, 4>> custom_costs, bool ledger,
                         std::string tenant, std::vector<std::string> tags,
                         std::vector<std::string> budgets) {
  CallOptions options;
  RunOptions& run = options.run;
  run.cache_url = std::move(cache_url);
  if (mode) run.mode = parse_cache_mode(*mode);
  run.namespace_ = std::move(namespace_);
  run.ttl = seconds_to_ms(ttl, "ttl");
  run.max_wait = seconds_to_ms(max_wait, "max_wait");
  run.initial_wait = seconds_to_ms(initial_wait, "initial_wait");
  run.strict_cache = strict_cache;
  run.coalesce = coalesce;
  if (stale_while_revalidate) {
    run.stale_while_revalidate = seconds_to_ms(*stale_while_revalidate, "stale_while_revalidate");
  }
  if (stale_if_error) run.stale_if_error = seconds_to_ms(*stale_if_error, "stale_if_error");
  for (const auto& [model, rates] : custom_costs) {
    ModelCosts costs;
    costs.cost_per_million_input_tokens = rates[0];
    costs.cost_per_million_output_tokens = rates[1];
    costs.cost_per_million_caching_input_tokens = rates[2];
    costs.cost_per_million_caching_hit_tokens = rates[3];
    costs.source = "custom_costs";
    run.custom_costs.emplace(model, costs);
  }
  run.ledger = ledger;
  run.tenant = std::move(tenant);
  run.tags = std::move(tags);
  for (const std::string& spec : budgets) run.budgets.push_back(Budget::parse(spec));
  return options;
}

/// The module's I/O thread: started on the first call, stopped by shutdown() (atexit).
class IoThread {
 public:
  asio::io_context& context() {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) {
      io_.restart();
      guard_.emplace(io_.get_executor());
      thread_ = std::thread([this] { io_.run(); });
    }
    return io_;
  }
  void stop() {
    std::thread thread;
    {
      std::lock_guard lock(mutex_);
      if (!thread_.joinable()) return;
      guard_.reset();
      thread = std::move(thread_);
    }
    thread.join();  // the calls in flight finish first
  }

 private:
  std::mutex mutex_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::thread thread_;
};

IoThread& io_thread() {
  static IoThread* thread = new IoThread();  // never destroyed: outlives the interpreter
  return *thread;
}

/// The error of a failed call, as Python builds it: (kind, message, details).
nb::tuple error_tuple(std::exception_ptr failure) {
  nb::dict details;
  try {
    std::rethrow_exception(failure);
  } catch (const RateLimitError& e) {
    details["attempts"] = e.attempts();
    details["waited"] = e.waited().count() / 1000.0;
    if (e.last_retry_after()) details["retry_after"] = e.last_retry_after()->count() / 1000.0;
    return nb::make_tuple("rate_limit", e.what(), details);
  } catch (const BudgetExceededError& e) {
    details["budget"] = e.budget();
    details["remaining_nano_usd"] = e.remaining_nano_usd();
    return nb::make_tuple("budget", e.what(), details);
  } catch (const CacheMissError& e) {
    return nb::make_tuple("cache_miss", e.what(), details);
  } catch (const CacheError& e) {
    return nb::make_tuple("cache", e.what(), details);
  } catch (const ConfigurationError& e) {
    return nb::make_tuple("configuration", e.what(), details);
  } catch (const ProviderError& e) {
    details["status"] = e.http_status();
    details["error_type"] = e.error_type();
    details["body_excerpt"] = e.body_excerpt();
    return nb::make_tuple("provider", e.what(), details);
  } catch (const std::exception& e) {
    return nb::make_tuple("internal", e.what(), details);
  } catch (...) {
    return nb::make_tuple("internal", "unknown error", details);
  }
}

HttpCall make_call(std::string method, std::string url, Headers headers, nb::bytes body) {
  HttpCall call;
  call.method = std::move(method);
  call.url = std::move(url);
  call.headers = std::move(headers);
  call.body.assign(body.c_str(), body.size());
  return call;
}

/// Posts the call; `done(result, None)` or `done(None, (kind, message, details))` is called
/// later on the I/O thread, with the GIL taken.
void submit(const CallOptions& options, std::string method, std::string url, Headers headers,
            nb::bytes body, std::string task_name, nb::callable done) {
  HttpCall call = make_call(std::move(method), std::move(url), std::move(headers), body);
  // Dropped with the GIL held, on whichever thread runs the handler.
  auto callback = std::shared_ptr<nb::object>(new nb::object(std::move(done)), [](nb::object* p) {
    nb::gil_scoped_acquire gil;
    delete p;
  });
  RunOptions run = options.run;
  asio::co_spawn(io_thread().context(),
                 cached_http_call(std::move(call), std::move(task_name), std::move(run)),
                 [callback](std::exception_ptr failure, HttpCallResult result) {
                   nb::gil_scoped_acquire gil;
                   try {
                     if (failure) {
                       (*callback)(nb::none(), error_tuple(failure));
                     } else {
                       (*callback)(nb::cast(std::move(result)), nb::none());
                     }
                   } catch (nb::python_error& e) {
                     e.discard_as_unraisable("llm_caching: completing a provider call");
                   }
                 });
}

/// The answer when the cache's memory holds it, found on the calling thread (no hop to the I/O
/// thread and back); None: submit() the call, which raises any error as its Python type.
std::optional<HttpCallResult> from_memory(const CallOptions& options, std::string method,
                                          std::string url, Headers headers, nb::bytes body) {
  HttpCall call = make_call(std::move(method), std::move(url), std::move(headers), body);
  nb::gil_scoped_release released;
  try {
    return cached_http_call_from_memory(call, options.run);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// The same, blocking the calling thread (without the GIL) until the answer is there. Returns
/// (result, None) or (None, error).
nb::tuple call_sync(const CallOptions& options, std::string method, std::string url,
                    Headers headers, nb::bytes body, std::string task_name) {
  HttpCall call = make_call(std::move(method), std::move(url), std::move(headers), body);
  std::optional<HttpCallResult> result;
  std::exception_ptr failure;
  {
    nb::gil_scoped_release released;
    try {
      result = cached_http_call_sync(std::move(call), task_name, options.run);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  if (failure) return nb::make_tuple(nb::none(), error_tuple(failure));
  return nb::make_tuple(nb::cast(std::move(*result)), nb::none());
}

/// cached_embed_sync without the GIL. Returns (result, None) or (None, error); result is
/// (embeddings, cached, coalesced, sent, input_tokens, cost_nano_usd, avoided_cost_nano_usd,
/// cache_keys, attempts).
nb::tuple embed_sync(const CallOptions& options, std::string model, std::vector<std::string> texts,
                     std::string task_name, std::string base_url, std::string api_key,
                     std::optional<std::int64_t> dimensions) {
  Embedder embedder{std::move(model), dimensions, std::move(base_url), std::move(api_key)};
  std::optional<EmbedResult> result;
  std::exception_ptr failure;
  {
    nb::gil_scoped_release released;
    try {
      result = cached_embed_sync(embedder, texts, task_name, options.run);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  if (failure) return nb::make_tuple(nb::none(), error_tuple(failure));
  const EmbedResult& r = *result;
  return nb::make_tuple(
      nb::make_tuple(r.embeddings, r.cached, r.coalesced, r.sent, r.usage.input_tokens,
                     r.cost_nano_usd, r.avoided_cost_nano_usd, r.cache_keys, r.attempts),
      nb::none());
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "llm-caching's C++ core (the Python package wraps it; see llm_caching).";

  nb::class_<CallOptions>(m, "CallOptions");
  m.def("make_options", &make_options, nb::arg("cache_url"), nb::arg("mode"), nb::arg("namespace"),
        nb::arg("ttl"), nb::arg("max_wait"), nb::arg("initial_wait"), nb::arg("strict_cache"),
        nb::arg("coalesce"), nb::arg("stale_while_revalidate"), nb::arg("stale_if_error"),
        nb::arg("custom_costs"), nb::arg("ledger"), nb::arg("tenant"), nb::arg("tags"),
        nb::arg("budgets"));

  nb::class_<HttpCallResult>(m, "CallResult")
      .def_ro("handled", &HttpCallResult::handled)
      .def_ro("status", &HttpCallResult::status)
      .def_ro("content_type", &HttpCallResult::content_type)
      .def_prop_ro("body",
                   [](const HttpCallResult& r) { return nb::bytes(r.body.data(), r.body.size()); })
      .def_prop_ro("provider",
                   [](const HttpCallResult& r) { return std::string(to_string(r.provider)); })
      .def_ro("model", &HttpCallResult::model)
      .def_prop_ro("usage",
                   [](const HttpCallResult& r) {
                     return nb::make_tuple(r.usage.input_tokens, r.usage.output_tokens,
                                           r.usage.cache_write_tokens, r.usage.cache_read_tokens,
                                           r.usage.requests);
                   })
      .def_ro("cache_hit", &HttpCallResult::cache_hit)
      .def_ro("coalesced", &HttpCallResult::coalesced)
      .def_ro("stale", &HttpCallResult::stale)
      .def_ro("cost_nano_usd", &HttpCallResult::cost_nano_usd)
      .def_ro("avoided_cost_nano_usd", &HttpCallResult::avoided_cost_nano_usd)
      .def_ro("cache_key", &HttpCallResult::cache_key)
      .def_ro("attempts", &HttpCallResult::attempts);

  m.def("submit", &submit, nb::arg("options"), nb::arg("method"), nb::arg("url"),
        nb::arg("headers"), nb::arg("body"), nb::arg("task_name"), nb::arg("done"));
  m.def("from_memory", &from_memory, nb::arg("options"), nb::arg("method"), nb::arg("url"),
        nb::arg("headers"), nb::arg("body"));
  m.def("call_sync", &call_sync, nb::arg("options"), nb::arg("method"), nb::arg("url"),
        nb::arg("headers"), nb::arg("body"), nb::arg("task_name"));
  m.def("embed_sync", &embed_sync, nb::arg("options"), nb::arg("model"), nb::arg("texts"),
        nb::arg("task_name"), nb::arg("base_url"), nb::arg("api_key"), nb::arg("dimensions"));
  m.def(
      "shutdown", [] { io_thread().stop(); }, nb::call_guard<nb::gil_scoped_release>(),
      "Waits for the calls in flight, then stops the I/O thread (registered with atexit).");
}
