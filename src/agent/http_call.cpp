// cached_http_call: an SDK's provider request, run through the exchange in-process (the Python
// front's transport). The gateway's LLM route does the same for a request off a socket.
#include "llm_caching/http_call.hpp"

#include "agent/run.hpp"
#include "agent/runtime_impl.hpp"
#include "cache/run_blocking.hpp"
#include "core/printable.hpp"
#include "core/text.hpp"
#include "exchange/exchange.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"
#include "providers/call_target.hpp"
#include "providers/codec.hpp"
#include "providers/http_model.hpp"

#include <fmt/format.h>
#include <boost/json/serialize.hpp>

namespace llm_caching {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;

std::string_view header(const HttpCall& call, std::string_view name) {
  for (const auto& [key, value] : call.headers) {
    if (key.size() == name.size() && core::lowercase(key) == name) return value;
  }
  return {};
}

/// The key the SDK sends in its provider's header; the one query key Gemini also takes.
std::string credential_of(const HttpCall& call, const providers::CallTarget& target) {
  switch (target.provider) {
    case Provider::openai: {
      const std::string_view auth = header(call, "authorization");
      if (auth.size() > 7 && core::lowercase(auth.substr(0, 7)) == "bearer ") {
        return std::string(auth.substr(7));
      }
      return std::string(auth);
    }
    case Provider::anthropic:
      return std::string(header(call, "x-api-key"));
    case Provider::gemini: {
      const std::string_view key = header(call, "x-goog-api-key");
      return key.empty() ? target.query_key : std::string(key);
    }
  }
  return {};
}

/// The native request, or nullopt for a body that is not a JSON object naming a model (the
/// provider's own 400 is the better answer to that, so it is passed through).
std::optional<NativeRequest> native_request(const HttpCall& call,
                                            const providers::CallTarget& target) {
  json::error_code ec;
  json::value parsed = parse_json_exact(call.body, ec);
  if (ec || !parsed.is_object()) return std::nullopt;
  NativeRequest native{target.provider, target.model, std::move(parsed.as_object()), target.stream};
  native.api = target.api;
  if (target.provider != Provider::gemini) {
    if (const json::value* model = native.body.if_contains("model")) {
      if (!model->is_string() || model->as_string().empty()) return std::nullopt;
      native.model = std::string(model->as_string());
    }
    const json::value* stream = native.body.if_contains("stream");
    native.stream =
        stream && stream->is_bool() && stream->as_bool() && providers::api_streams(target.api);
  }
  if (native.model.empty()) return std::nullopt;
  return native;
}

/// The answer's body as the SDK asked for it: the JSON, or the events of a stream (made from
/// the JSON when the original was not streamed).
std::string answer_body(const NativeRequest& native, const core::CacheEntry& entry) {
  if (!native.stream) return entry.response;
  if (!entry.stream.empty()) return entry.stream;
  return providers::response_to_sse(native.provider, native.api, entry.response);
}

void fill_result(HttpCallResult& out, const NativeRequest& native,
                 const exchange::ExchangeResult& ran) {
  out.status = 200;
  out.content_type = native.stream ? "text/event-stream" : "application/json";
  out.body = answer_body(native, *ran.entry);
  out.provider = native.provider;
  out.model = native.model;
  out.usage = ran.entry->usage;
  out.usage.requests = (ran.cache_hit || ran.coalesced) ? 0 : ran.attempts;
  out.cache_hit = ran.cache_hit;
  out.coalesced = ran.coalesced;
  out.stale = ran.stale;
  out.cost_nano_usd = ran.cost_nano_usd;
  out.avoided_cost_nano_usd = ran.avoided_nano_usd;
  out.cache_key = ran.storage_key;
  out.attempts = ran.attempts;
}

/// What both paths need before the cache is asked: the native request and where it goes.
struct Prepared {
  providers::CallTarget target;
  NativeRequest native;
  Runtime* runtime = nullptr;
};

std::optional<Prepared> prepare(const HttpCall& call, const RunOptions& options) {
  auto target = providers::recognise_call(call.method, call.url);
  if (!target) return std::nullopt;
  auto native = native_request(call, *target);
  if (!native) return std::nullopt;
  Runtime& runtime = options.runtime ? *options.runtime : Runtime::default_runtime();
  return Prepared{std::move(*target), std::move(*native), &runtime};
}

asio::awaitable<HttpCallResult> run_call(HttpCall call, std::string task_name, RunOptions options) {
  HttpCallResult out;
  std::optional<Prepared> prepared = prepare(call, options);
  if (!prepared) {
    out.handled = false;
    co_return out;
  }
  const providers::CallTarget& target = prepared->target;
  NativeRequest& native = prepared->native;
  Runtime& runtime = *prepared->runtime;
  const CacheMode mode = options.mode.value_or(runtime.options().mode);
  std::shared_ptr<providers::HttpModel> model = providers::make_http_model(
      runtime.impl().pool, providers::default_host(target.provider), target.base_url,
      credential_of(call, target), {}, mode != CacheMode::replay_only);
  // An OpenAI chat or legacy stream asks for its final usage chunk, so a miss is costed (the
  // key ignores stream_options); otherwise the SDK's own bytes go upstream.
  if (native.provider == Provider::openai && native.stream && native.api != Api::responses) {
    json::value& stream_options = native.body["stream_options"];
    if (!stream_options.is_object()) stream_options = json::object{};
    stream_options.as_object()["include_usage"] = true;
  } else {
    model->send_verbatim(call.body);
  }
  const CostTable overrides(options.custom_costs);
  exchange::ExchangeRequest request;
  request.native = native;
  agent::apply_run_options(request, options, runtime.options(), model, overrides);
  const std::shared_ptr<exchange::Exchange> shared =
      runtime.impl().exchange_for(agent::cache_options_of(options));

  request.task = task_name;  // named by the entry a miss records (DESIGN §4)
  request.budgets = agent::budget_lines_of(options, task_name);
  exchange::LedgerWriter* ledger = nullptr;
  if (options.ledger) {
    shared->start_ledger(runtime.impl().ledger_options());
    ledger = shared->ledger();
  }
  const auto started = std::chrono::steady_clock::now();
  const auto record = [&](const exchange::ExchangeResult* result) {
    if (ledger == nullptr) return;
    ledger->record(
        agent::ledger_record(options, native.provider, native.model, task_name, result, started));
  };

  if (ledger != nullptr && request.stale_while_revalidate.count() > 0) {
    // A background refresh records what it spends under this call's task and tenant.
    request.ledger_who =
        agent::ledger_record(options, native.provider, native.model, task_name, nullptr, started);
  }
  std::optional<exchange::ExchangeResult> ran;
  std::optional<providers::HttpModel::ErrorAnswer> refused;
  try {
    ran = co_await shared->run(*model, std::move(request));
  } catch (const CacheMissError& e) {
    record(nullptr);
    throw CacheMissError(fmt::format("task '{}': {}", core::printable(task_name, 64), e.what()));
  } catch (const ProviderError& e) {
    record(nullptr);
    // The provider's own refusal (400, 401, a 5xx past the retries) goes back to the SDK as it
    // came, so its usual error reaches the caller; no answer at all is ours to raise.
    if (!model->last_error() || e.http_status() == 0) throw;
    refused = model->last_error();
  } catch (...) {
    record(nullptr);
    throw;
  }
  if (refused) {
    out.status = refused->status;
    out.content_type = refused->content_type.empty() ? "application/json" : refused->content_type;
    out.body = std::move(refused->body);
    out.provider = native.provider;
    out.model = native.model;
    out.attempts = model->calls();
    co_return out;
  }
  record(&*ran);
  fill_result(out, native, *ran);
  co_return out;
}

}  // namespace

asio::awaitable<HttpCallResult> cached_http_call(HttpCall call, std::string task_name,
                                                 RunOptions options) {
  return run_call(std::move(call), std::move(task_name), std::move(options));
}

std::optional<HttpCallResult> cached_http_call_from_memory(const HttpCall& call,
                                                           const RunOptions& options) {
  // A call that writes the ledger takes the full path, which records it.
  if (options.ledger) return std::nullopt;
  std::optional<Prepared> prepared = prepare(call, options);
  if (!prepared) return std::nullopt;
  Runtime& runtime = *prepared->runtime;
  const CostTable overrides(options.custom_costs);
  exchange::ExchangeRequest request;
  request.native = std::move(prepared->native);
  agent::apply_run_options(request, options, runtime.options(), nullptr, overrides);
  // The key's endpoint scope, as run_call's model gives it (only the base URL counts).
  providers::ProviderEndpoint endpoint;
  endpoint.provider = prepared->target.provider;
  endpoint.base_url = prepared->target.base_url;
  request.scope = providers::key_scope(endpoint);
  const std::shared_ptr<exchange::Exchange> shared =
      runtime.impl().exchange_for(agent::cache_options_of(options));
  std::optional<exchange::ExchangeResult> ran = shared->answer_from_l1(request);
  if (!ran) return std::nullopt;
  HttpCallResult out;
  fill_result(out, request.native, *ran);
  return out;
}

HttpCallResult cached_http_call_sync(HttpCall call, std::string_view task_name,
                                     RunOptions options) {
  return cache::run_blocking(run_call(std::move(call), std::string(task_name), std::move(options)));
}

}  // namespace llm_caching
