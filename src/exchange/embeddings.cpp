// Embeddings cached per input (embeddings.hpp).
#include "exchange/embeddings.hpp"

#include "exchange/cache_modes.hpp"
#include "exchange/embeddings_flights.hpp"
#include "exchange/replay_miss.hpp"
#include "llm_caching/errors.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>

namespace llm_caching::exchange {

namespace {

namespace json = boost::json;
namespace emb = providers::embeddings;

/// Reads the cache for every input; the indexes of those it does not hold.
asio::awaitable<std::vector<std::size_t>> look_up(EmbeddingsCall& call) {
  std::vector<std::size_t> missing;
  const bool reads = reads_cache(call.request.settings.mode);
  for (std::size_t i = 0; i < call.result.inputs.size(); ++i) {
    EmbeddedInput& in = call.result.inputs[i];
    std::shared_ptr<const core::CacheEntry> found;
    if (reads) found = co_await call.exchange.cache().get(in.storage_key, call.now);
    if (!found) {
      missing.push_back(i);
      continue;
    }
    ++call.result.cached;
    take_unpaid(call.result, in, std::move(found));
  }
  co_return missing;
}

/// The upstream request for the inputs of `batch`.
ExchangeRequest batch_request(const EmbeddingsRequest& request, const EmbeddingsBatch& batch) {
  std::vector<const json::value*> inputs;
  inputs.reserve(batch.send.size());
  for (std::size_t i : batch.send) inputs.push_back(&request.split.inputs[i]);
  ExchangeRequest out = request.settings;
  out.native.provider = emb::provider_of(request.split.wire);
  out.native.model = request.split.model;
  out.native.api = Api::embeddings;
  out.native.body = emb::upstream_body(request.split, inputs);
  out.mode = CacheMode::bypass;  // the entries are per input, written by run_embeddings
  out.coalesce = false;
  if (request.settings.caller_gone) {
    // A caller that hung up stops its retries, unless another caller waits for one of its inputs.
    out.caller_gone = [gone = request.settings.caller_gone, &guards = batch.guards] {
      if (!gone()) return false;
      for (const auto& guard : guards) {
        if (guard && guard->has_waiters()) return false;
      }
      return true;
    };
  }
  return out;
}

/// The request for input `i` alone: what its key is derived from (and a replay miss compared).
NativeRequest input_request(const emb::Request& split, std::size_t i) {
  NativeRequest native;
  native.provider = emb::provider_of(split.wire);
  native.model = split.model;
  native.api = Api::embeddings;
  native.body = emb::key_body(split, split.inputs[i]);
  return native;
}

/// The entries of the fresh inputs, each with its share of the batch's tokens and cost, and the
/// request it answers as keyed (entry format 3, as a chat entry: a replay miss names the
/// nearest recorded input and what differs).
std::vector<std::shared_ptr<core::CacheEntry>> fresh_entries(const EmbeddingsCall& call,
                                                             const std::vector<std::size_t>& send,
                                                             std::vector<std::string>& fresh,
                                                             const ExchangeResult& result) {
  const EmbeddingsRequest& request = call.request;
  std::vector<std::size_t> weights;
  for (std::size_t i : send) weights.push_back(json::serialize(request.split.inputs[i]).size());
  const std::vector<std::int64_t> tokens = emb::shares(result.entry->usage.input_tokens, weights);
  const std::vector<std::int64_t> costs = emb::shares(result.cost_nano_usd, weights);
  const std::string scope_digest = core::request_scope_digest(request.settings.scope);
  const std::string task = core::entry_task_name(request.settings.task);
  const cache::TieredCache& cache = call.exchange.cache();
  std::vector<std::shared_ptr<core::CacheEntry>> entries;
  for (std::size_t j = 0; j < send.size(); ++j) {
    const NativeRequest native = input_request(request.split, send[j]);
    auto entry = std::make_shared<core::CacheEntry>();
    entry->provider = std::string(to_string(native.provider));
    entry->model = request.split.model;
    entry->created_at_ms = call.now;
    entry->ttl_ms = request.settings.ttl.count();
    entry->response = std::move(fresh[j]);
    entry->usage.input_tokens = tokens[j];
    entry->usage.requests = 1;
    entry->cost_nano_usd = costs[j];
    // Scrubbed of LLM_CACHE_REDACT's matches, as a chat entry's (provider_call.cpp).
    entry->request = cache.stored_request(
        derive_key(native.provider, native.api, native.model, native.body, request.settings.scope)
            .canonical_request);
    if (!entry->request.empty()) {
      entry->api = std::string(to_string(native.api));
      entry->scope_digest = scope_digest;
    }
    entry->task = task;
    entries.push_back(std::move(entry));
  }
  return entries;
}

/// Ends the flights of `batch` with `error` (their waiters get it too) and throws it; its locks
/// are released in the background as the batch goes.
[[noreturn]] void fail_all(EmbeddingsBatch& batch, std::exception_ptr error) {
  for (auto& guard : batch.guards) {
    if (guard) guard->finish(nullptr, error, false);
  }
  std::rethrow_exception(error);
}

/// Sends the inputs of `batch` upstream in one request, stores their entries (as the mode
/// allows), releases their cross-process locks once stored and ends their flights with them.
asio::awaitable<void> send_batch(EmbeddingsCall& call, EmbeddingsBatch& batch) {
  if (batch.empty()) co_return;
  ExchangeRequest upstream = batch_request(call.request, batch);
  std::optional<ExchangeResult> sent;
  std::exception_ptr error;
  try {
    sent = co_await call.exchange.run(call.model, std::move(upstream));
  } catch (...) {
    error = std::current_exception();
  }
  if (error) fail_all(batch, error);
  std::vector<std::string> fresh;
  std::string model;
  const std::string problem = emb::read_answer(call.request.split.wire, sent->entry->response,
                                               batch.send.size(), fresh, model);
  if (!problem.empty()) {
    fail_all(batch, std::make_exception_ptr(ProviderError(problem, 200, "bad_answer", "")));
  }
  EmbeddingsResult& result = call.result;
  if (!model.empty()) result.model = std::move(model);
  result.sent += batch.send.size();
  result.cost_nano_usd += sent->cost_nano_usd;
  result.sent_tokens += sent->entry->usage.input_tokens;
  result.attempts += sent->attempts;
  result.priced = result.priced && sent->priced;
  auto entries = fresh_entries(call, batch.send, fresh, *sent);
  const bool writes = writes_cache(call.request.settings.mode);
  cache::TieredCache& cache = call.exchange.cache();
  for (std::size_t j = 0; j < batch.send.size(); ++j) {
    EmbeddedInput& in = result.inputs[batch.send[j]];
    in.entry = entries[j];
    if (writes) co_await cache.put(in.storage_key, entries[j], call.request.settings.ttl);
    // Released after the write: a waiting process reads the L2 once the lock is gone.
    std::optional<std::string> token;
    if (batch.locks[j]) token = batch.locks[j]->take();
    if (token) co_await cache.unlock(in.storage_key, *token);
    if (batch.guards[j]) batch.guards[j]->finish(in.entry, nullptr, false);
  }
}

/// The CacheMissError of a replay_only call that found input `i` (of `missing`) not cached,
/// naming the nearest recorded input and what differs (replay_miss.hpp), as a chat miss does.
asio::awaitable<void> throw_replay_miss(EmbeddingsCall& call, std::size_t missing, std::size_t i) {
  const EmbeddingsRequest& request = call.request;
  const std::string& key = call.result.inputs[i].storage_key;
  ExchangeRequest probe;
  probe.native = input_request(request.split, i);
  probe.namespace_ = request.settings.namespace_;
  probe.scope = request.settings.scope;
  const std::string why = co_await explain_replay_miss(call.exchange.cache(), probe, key);
  throw CacheMissError("no cached embedding for " + std::to_string(missing) + " of " +
                       std::to_string(call.result.inputs.size()) + " inputs (model " +
                       request.split.model + ", first key " + key +
                       "), and the mode is replay_only, so the provider was not called" + why);
}

}  // namespace

std::vector<std::string> embeddings_keys(const emb::Request& split, const std::string& namespace_,
                                         const std::string& scope) {
  std::vector<std::string> keys;
  keys.reserve(split.inputs.size());
  const Provider provider = emb::provider_of(split.wire);
  for (const json::value& input : split.inputs) {
    const KeyDerivation key =
        derive_key(provider, Api::embeddings, split.model, emb::key_body(split, input), scope);
    keys.push_back(storage_key(namespace_, key.hex));
  }
  return keys;
}

asio::awaitable<EmbeddingsResult> run_embeddings(Exchange& exchange, Model& model,
                                                 EmbeddingsRequest request) {
  EmbeddingsResult result;
  result.model = request.split.model;
  std::vector<std::string> keys =
      embeddings_keys(request.split, request.settings.namespace_, request.settings.scope);
  result.inputs.resize(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) result.inputs[i].storage_key = std::move(keys[i]);
  EmbeddingsCall call{exchange, model, request, result, system_now_ms()};

  const std::vector<std::size_t> missing = co_await look_up(call);
  if (!missing.empty() && request.settings.mode == CacheMode::replay_only) {
    co_await throw_replay_miss(call, missing.size(), missing.front());
  }
  // This call sends the inputs it leads (and holds the lock of) before it waits for any other,
  // and so does every other call: whoever it waits for is not waiting for it, so two calls (or
  // processes) with overlapping inputs never wait for each other.
  EmbeddingsPlan plan = co_await plan_embeddings(call, missing);
  co_await send_batch(call, plan.batch);
  EmbeddingsBatch taken_over = co_await wait_for_processes(call, plan);
  co_await send_batch(call, taken_over);
  EmbeddingsBatch handed_over = co_await wait_in_process(call, plan);
  co_await send_batch(call, handed_over);
  co_return result;
}

}  // namespace llm_caching::exchange
