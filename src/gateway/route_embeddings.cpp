// The embeddings calls, cached per input: OpenAI's POST /v1/embeddings and Gemini's
// :embedContent and :batchEmbedContents (their wire formats: embeddings_wire.*). Each input of a
// batch is its own entry, keyed as a request for that input alone (the other fields,
// encoding_format included, as sent), so a batch of 100 inputs of which 90 are cached sends only
// the 10 others upstream, in one request, and is answered with the 100 embeddings in order. Cost:
// what was sent; avoided: the cached inputs' share of what they cost when they were sent.
//
// A fresh batch's cost and tokens are shared among its inputs by their byte length (the provider
// reports one total), which is what each entry records. The upstream call goes through the
// exchange (retries, pricing, error answers) in bypass mode; the entries are written here.
#include "gateway/gateway.hpp"

#include "gateway/controls.hpp"
#include "gateway/embeddings_wire.hpp"
#include "gateway/route_parts.hpp"
#include "gateway/worker_state.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include <boost/json/serialize.hpp>

namespace llm_caching::gateway {

namespace json = boost::json;
using embeddings::Wire;

namespace {

/// Where the embedding of one input comes from.
struct Input {
  std::string storage_key;
  std::shared_ptr<const core::CacheEntry> cached;  ///< null: to be sent
  std::string fresh;                               ///< a fresh embedding's JSON text
  /// The embedding's JSON text: the cached entry's (not copied: an answer of 100 embeddings is
  /// megabytes, and copying it twice was most of an all-cached request) or `fresh`.
  std::string_view embedding() const { return cached ? std::string_view(cached->response) : fresh; }
};

/// Shares `total` among the inputs by weight; the remainder goes to the last.
std::vector<std::int64_t> shares(std::int64_t total, const std::vector<std::size_t>& weights) {
  std::size_t sum = 0;
  for (std::size_t w : weights) sum += w;
  std::vector<std::int64_t> out;
  std::int64_t given = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const std::int64_t share =
        i + 1 == weights.size()
            ? total - given
            : static_cast<std::int64_t>(static_cast<long double>(total) * weights[i] /
                                        std::max<std::size_t>(sum, 1));
    out.push_back(share);
    given += share;
  }
  return out;
}

/// What the route reads of a request; throws BadRequest.
struct EmbeddingsCall {
  CacheControls controls;
  embeddings::Request request;
  std::vector<Input> inputs;  ///< one per request.inputs
};

EmbeddingsCall read_call(const IncomingRequest& request, const StaleWindows& defaults, Wire wire,
                         const std::string& route_model) {
  EmbeddingsCall call;
  call.controls = parse_cache_controls(request.headers, defaults);
  json::error_code ec;
  json::value parsed = parse_json_exact(request.body, ec);
  if (ec || !parsed.is_object()) throw BadRequest("the request body is not a JSON object");
  call.request = embeddings::read_request(wire, route_model, std::move(parsed.as_object()));
  call.inputs.resize(call.request.inputs.size());
  return call;
}

/// The upstream request for the inputs at `missing`.
exchange::ExchangeRequest batch_request(const EmbeddingsCall& call,
                                        const std::vector<std::size_t>& missing,
                                        const std::string& scope, const GatewayConfig& config) {
  std::vector<const json::value*> inputs;
  for (std::size_t i : missing) inputs.push_back(&call.request.inputs[i]);
  exchange::ExchangeRequest request;
  request.native.provider = embeddings::provider_of(call.request.wire);
  request.native.model = call.request.model;
  request.native.api = Api::embeddings;
  request.native.body = embeddings::upstream_body(call.request, inputs);
  request.scope = scope;
  request.mode = CacheMode::bypass;  // the entries are per input, written by the route
  request.retry = config.retry;
  if (call.controls.max_wait) {
    request.retry.max_wait = std::min(*call.controls.max_wait, config.max_wait_cap);
  }
  request.allow_unpriced = config.allow_unpriced;
  return request;
}

/// The entries of the fresh inputs, each with its share of the batch's tokens and cost.
std::vector<std::shared_ptr<core::CacheEntry>> fresh_entries(
    const EmbeddingsCall& call, const std::vector<std::size_t>& missing,
    const exchange::ExchangeResult& result, std::int64_t now, std::chrono::milliseconds ttl) {
  std::vector<std::size_t> weights;
  for (std::size_t i : missing) weights.push_back(json::serialize(call.request.inputs[i]).size());
  const std::vector<std::int64_t> tokens = shares(result.entry->usage.input_tokens, weights);
  const std::vector<std::int64_t> costs = shares(result.cost_nano_usd, weights);
  std::vector<std::shared_ptr<core::CacheEntry>> entries;
  for (std::size_t j = 0; j < missing.size(); ++j) {
    auto entry = std::make_shared<core::CacheEntry>();
    entry->provider = std::string(to_string(embeddings::provider_of(call.request.wire)));
    entry->model = call.request.model;
    entry->created_at_ms = now;
    entry->ttl_ms = ttl.count();
    entry->response = call.inputs[missing[j]].fresh;
    entry->usage.input_tokens = tokens[j];
    entry->usage.requests = 1;
    entry->cost_nano_usd = costs[j];
    entries.push_back(std::move(entry));
  }
  return entries;
}

/// Keys each input and reads what the cache holds for it; the indexes of the inputs it does not
/// hold (all of them when the mode skips the read). Cached inputs add to summary.avoided.
boost::asio::awaitable<std::vector<std::size_t>> look_up(cache::TieredCache& cache,
                                                         EmbeddingsCall& call,
                                                         const std::string& scope, std::int64_t now,
                                                         exchange::ExchangeResult& summary) {
  const CacheMode mode = call.controls.mode;
  const bool reads = mode != CacheMode::refresh && mode != CacheMode::bypass;
  const Provider provider = embeddings::provider_of(call.request.wire);
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < call.inputs.size(); ++i) {
    Input& in = call.inputs[i];
    const KeyDerivation key =
        derive_key(provider, Api::embeddings, call.request.model,
                   embeddings::key_body(call.request, call.request.inputs[i]), scope);
    in.storage_key = storage_key(call.controls.namespace_, key.hex);
    if (reads) in.cached = co_await cache.get(in.storage_key, now);
    if (!in.cached) {
      missing.push_back(i);
      continue;
    }
    summary.avoided_nano_usd += in.cached->cost_nano_usd;
  }
  co_return missing;
}

/// The upstream side of a request for the inputs the cache did not hold.
struct Batch {
  Provider provider;
  exchange::Exchange& exchange;
  const GatewayConfig& config;
  UpstreamModel& model;
  const std::string& scope;
  std::int64_t now;
  std::string answered_model;  ///< the model the upstream named
  std::int64_t sent_tokens;    ///< the upstream's prompt_tokens
};

/// Sends the inputs at `missing` upstream in one request, puts their embeddings in place and
/// writes their entries (as the mode allows); the answer to send instead when that failed.
boost::asio::awaitable<std::optional<OutgoingResponse>> send_missing(
    Batch& batch, EmbeddingsCall& call, const std::vector<std::size_t>& missing,
    exchange::ExchangeResult& summary, ResponseStream& out) {
  exchange::ExchangeRequest request = batch_request(call, missing, batch.scope, batch.config);
  request.caller_gone = [&out] { return out.client_gone(); };
  std::optional<exchange::ExchangeResult> result;
  std::exception_ptr failure;
  try {
    result = co_await batch.exchange.run(batch.model, std::move(request));
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) co_return failure_response(batch.provider, failure, batch.model.last_error());
  std::vector<std::string> fresh;
  const std::string problem = embeddings::read_answer(call.request.wire, result->entry->response,
                                                      missing.size(), fresh, batch.answered_model);
  if (!problem.empty()) co_return error_response(batch.provider, 502, problem);
  for (std::size_t j = 0; j < missing.size(); ++j) {
    call.inputs[missing[j]].fresh = std::move(fresh[j]);
  }
  summary.cost_nano_usd = result->cost_nano_usd;
  summary.priced = result->priced;
  batch.sent_tokens = result->entry->usage.input_tokens;
  const CacheMode mode = call.controls.mode;
  if (mode == CacheMode::use || mode == CacheMode::refresh) {
    const auto ttl = call.controls.ttl.value_or(batch.config.default_ttl);
    auto entries = fresh_entries(call, missing, *result, batch.now, ttl);
    for (std::size_t j = 0; j < missing.size(); ++j) {
      co_await batch.exchange.cache().put(call.inputs[missing[j]].storage_key,
                                          std::move(entries[j]), ttl);
    }
  }
  co_return std::nullopt;
}

OutgoingResponse embeddings_answer(const EmbeddingsCall& call, std::size_t sent,
                                   const std::string& model, std::int64_t sent_tokens,
                                   const exchange::ExchangeResult& summary) {
  std::vector<std::string_view> texts;
  for (const Input& in : call.inputs) texts.push_back(in.embedding());
  OutgoingResponse response;
  response.body = embeddings::answer_body(call.request.wire, texts, model, sent_tokens);
  response.headers = answer_headers(kJson, sent == 0 ? "HIT" : "MISS", summary);
  std::erase_if(response.headers, [](const auto& h) {
    return h.first == "x-llm-cache-key" && h.second.empty();  // several inputs: several keys
  });
  response.headers.emplace_back(
      "x-llm-cache-inputs",
      std::to_string(call.inputs.size() - sent) + " cached, " + std::to_string(sent) + " sent");
  return response;
}

}  // namespace

boost::asio::awaitable<void> Gateway::handle_embeddings(WorkerState& worker,
                                                        const IncomingRequest& request,
                                                        const Route& route, RequestRecord& record,
                                                        ResponseStream& out) {
  const Provider provider = route.provider;
  const Wire wire = provider == Provider::openai ? Wire::openai
                    : route.gemini_batch         ? Wire::gemini_batch
                                                 : Wire::gemini_one;
  record.llm = true;
  record.provider = provider;
  EmbeddingsCall call;
  std::optional<OutgoingResponse> refusal;
  try {
    call = read_call(request, config_.stale_defaults, wire, route.model);
  } catch (const BadRequest& e) {
    refusal = error_response(provider, 400, e.what());
  }
  const std::string credential = caller_credential(provider, request.headers, route.query_key);
  const std::string identity = caller_identity(credential, request.headers);
  if (!refusal) refusal = keyless_refusal(config_, metrics_, provider, identity);
  if (refusal) {
    record.status = refusal->status;
    co_await out.send(std::move(*refusal));
    co_return;
  }
  const std::string scope = request_scope(config_, worker.scopes, identity, request.headers, route,
                                          endpoint_scope(route.provider));

  // 1. Each input's key, and what the cache holds for it.
  exchange::ExchangeResult summary;  // this call's cost, and what the cached inputs avoided
  const std::int64_t now = exchange::system_now_ms();
  const std::vector<std::size_t> missing =
      co_await look_up(exchange_->cache(), call, scope, now, summary);
  if (call.inputs.size() == 1) summary.storage_key = call.inputs.front().storage_key;
  if (!missing.empty() && call.controls.mode == CacheMode::replay_only) {
    record.status = 504;
    co_await out.send(error_response(provider, 504,
                                     "no cached answer for some inputs, and the request said "
                                     "only-if-cached, so the provider was not called"));
    co_return;
  }

  // 2. One upstream request for the inputs the cache did not hold, then their entries.
  UpstreamModel model(worker.upstream, config_.upstreams[provider], request.headers, credential);
  model.use_api_version(route.gemini_version);
  Batch batch{provider, *exchange_, config_, model, scope, now, call.request.model, 0};
  std::optional<OutgoingResponse> failed;
  if (!missing.empty()) failed = co_await send_missing(batch, call, missing, summary, out);
  record.upstream_calls = model.calls();
  record.upstream_wait = model.waited();
  if (failed) {
    record.status = failed->status;
    co_await out.send(std::move(*failed));
    co_return;
  }

  // 3. The answer: every embedding in the caller's order.
  OutgoingResponse response =
      embeddings_answer(call, missing.size(), batch.answered_model, batch.sent_tokens, summary);
  record.outcome = missing.empty() ? Outcome::hit : Outcome::miss;
  record.overhead_applies = record.upstream_calls <= 1;
  record.status = 200;
  record.cost_nano_usd = summary.cost_nano_usd;
  record.avoided_nano_usd = summary.avoided_nano_usd;
  record.unpriced = !summary.priced;
  if (!summary.priced) warn_unpriced(call.request.model);
  co_await out.send(std::move(response));
}

}  // namespace llm_caching::gateway
