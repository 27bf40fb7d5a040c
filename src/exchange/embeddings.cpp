// Embeddings cached per input (embeddings.hpp).
#include "exchange/embeddings.hpp"

#include "exchange/cache_modes.hpp"
#include "llm_caching/errors.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace llm_caching::exchange {

namespace {

namespace json = boost::json;
namespace emb = providers::embeddings;

/// The inputs this call sends, each with the flight it leads (null when it does not coalesce),
/// and the inputs whose flight another caller leads.
struct Plan {
  std::vector<std::size_t> send;
  std::vector<std::unique_ptr<FlightGuard>> guards;  ///< parallel to send
  std::vector<std::pair<std::size_t, std::shared_ptr<Flight>>> waits;
};

/// A call's state while it runs.
struct Call {
  Exchange& exchange;
  Model& model;
  EmbeddingsRequest& request;
  EmbeddingsResult& result;
  std::int64_t now;
};

void take_unpaid(EmbeddingsResult& result, EmbeddedInput& in,
                 std::shared_ptr<const core::CacheEntry> entry) {
  result.avoided_nano_usd += entry->cost_nano_usd;
  in.entry = std::move(entry);
}

/// Reads the cache for every input; the indexes of those it does not hold.
asio::awaitable<std::vector<std::size_t>> look_up(Call& call) {
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

/// Joins each missing input's flight: leads it (reading the cache once more, as an answer may
/// have landed between the look-up and the join) or waits for it.
asio::awaitable<Plan> plan(Call& call, const std::vector<std::size_t>& missing) {
  Plan out;
  const ExchangeRequest& settings = call.request.settings;
  if (!settings.coalesce || !coalesces(settings.mode)) {
    out.send = missing;
    out.guards.resize(missing.size());
    co_return out;
  }
  FlightTable& flights = call.exchange.flights();
  for (std::size_t i : missing) {
    EmbeddedInput& in = call.result.inputs[i];
    std::pair<std::shared_ptr<Flight>, bool> joined = flights.join(in.storage_key);
    if (!joined.second) {
      out.waits.emplace_back(i, std::move(joined.first));
      continue;
    }
    auto guard = std::make_unique<FlightGuard>(flights, std::move(joined.first), in.storage_key);
    std::shared_ptr<const core::CacheEntry> found =
        co_await call.exchange.cache().get(in.storage_key, call.now);
    if (found) {
      guard->finish(found, nullptr, true);
      ++call.result.cached;
      take_unpaid(call.result, in, std::move(found));
      continue;
    }
    out.send.push_back(i);
    out.guards.push_back(std::move(guard));
  }
  co_return out;
}

/// The upstream request for the inputs at `send`.
ExchangeRequest batch_request(const EmbeddingsRequest& request,
                              const std::vector<std::size_t>& send, const Plan& plan) {
  std::vector<const json::value*> inputs;
  inputs.reserve(send.size());
  for (std::size_t i : send) inputs.push_back(&request.split.inputs[i]);
  ExchangeRequest batch = request.settings;
  batch.native.provider = emb::provider_of(request.split.wire);
  batch.native.model = request.split.model;
  batch.native.api = Api::embeddings;
  batch.native.body = emb::upstream_body(request.split, inputs);
  batch.mode = CacheMode::bypass;  // the entries are per input, written by run_embeddings
  batch.coalesce = false;
  if (request.settings.caller_gone) {
    // A caller that hung up stops its retries, unless another caller waits for one of its inputs.
    batch.caller_gone = [gone = request.settings.caller_gone, &plan] {
      if (!gone()) return false;
      for (const auto& guard : plan.guards) {
        if (guard && guard->has_waiters()) return false;
      }
      return true;
    };
  }
  return batch;
}

/// The entries of the fresh inputs, each with its share of the batch's tokens and cost.
std::vector<std::shared_ptr<core::CacheEntry>> fresh_entries(const Call& call,
                                                             const std::vector<std::size_t>& send,
                                                             std::vector<std::string>& fresh,
                                                             const ExchangeResult& result) {
  const EmbeddingsRequest& request = call.request;
  std::vector<std::size_t> weights;
  for (std::size_t i : send) weights.push_back(json::serialize(request.split.inputs[i]).size());
  const std::vector<std::int64_t> tokens = emb::shares(result.entry->usage.input_tokens, weights);
  const std::vector<std::int64_t> costs = emb::shares(result.cost_nano_usd, weights);
  std::vector<std::shared_ptr<core::CacheEntry>> entries;
  for (std::size_t j = 0; j < send.size(); ++j) {
    auto entry = std::make_shared<core::CacheEntry>();
    entry->provider = std::string(to_string(emb::provider_of(request.split.wire)));
    entry->model = request.split.model;
    entry->created_at_ms = call.now;
    entry->ttl_ms = request.settings.ttl.count();
    entry->response = std::move(fresh[j]);
    entry->usage.input_tokens = tokens[j];
    entry->usage.requests = 1;
    entry->cost_nano_usd = costs[j];
    entries.push_back(std::move(entry));
  }
  return entries;
}

/// Ends the flights this call leads with `error` (their waiters get it too) and throws it.
[[noreturn]] void fail_all(Plan& plan, std::exception_ptr error) {
  for (auto& guard : plan.guards) {
    if (guard) guard->finish(nullptr, error, false);
  }
  std::rethrow_exception(error);
}

/// Sends the inputs at plan.send upstream in one request, stores their entries (as the mode
/// allows) and ends their flights with them.
asio::awaitable<void> send_batch(Call& call, Plan& plan) {
  if (plan.send.empty()) co_return;
  ExchangeRequest batch = batch_request(call.request, plan.send, plan);
  std::optional<ExchangeResult> sent;
  std::exception_ptr error;
  try {
    sent = co_await call.exchange.run(call.model, std::move(batch));
  } catch (...) {
    error = std::current_exception();
  }
  if (error) fail_all(plan, error);
  std::vector<std::string> fresh;
  std::string model;
  const std::string problem = emb::read_answer(call.request.split.wire, sent->entry->response,
                                               plan.send.size(), fresh, model);
  if (!problem.empty()) {
    fail_all(plan, std::make_exception_ptr(ProviderError(problem, 200, "bad_answer", "")));
  }
  EmbeddingsResult& result = call.result;
  if (!model.empty()) result.model = std::move(model);
  result.sent += plan.send.size();
  result.cost_nano_usd += sent->cost_nano_usd;
  result.sent_tokens += sent->entry->usage.input_tokens;
  result.attempts += sent->attempts;
  result.priced = result.priced && sent->priced;
  auto entries = fresh_entries(call, plan.send, fresh, *sent);
  const bool writes = writes_cache(call.request.settings.mode);
  for (std::size_t j = 0; j < plan.send.size(); ++j) {
    EmbeddedInput& in = result.inputs[plan.send[j]];
    in.entry = entries[j];
    if (writes)
      co_await call.exchange.cache().put(in.storage_key, entries[j], call.request.settings.ttl);
    if (plan.guards[j]) plan.guards[j]->finish(in.entry, nullptr, false);
  }
}

/// Waits for the flights other callers lead; the inputs whose leader was cancelled.
asio::awaitable<std::vector<std::size_t>> wait_for_others(Call& call, Plan& plan) {
  std::vector<std::size_t> handed_over;
  for (auto& waited : plan.waits) {
    const std::size_t i = waited.first;
    const std::shared_ptr<Flight>& flight = waited.second;
    FlightOutcome outcome{};
    if (!flight->is_over(outcome)) {
      NativeRequest parked;  // nothing to park: a handed-over input is sent again from the split
      outcome = co_await flight->async_wait(parked, asio::deferred);
    }
    if (outcome == FlightOutcome::handed_over) {
      handed_over.push_back(i);
      continue;
    }
    if (flight->error) std::rethrow_exception(flight->error);
    EmbeddedInput& in = call.result.inputs[i];
    (flight->from_cache ? call.result.cached : call.result.coalesced) += 1;
    in.coalesced = !flight->from_cache;
    take_unpaid(call.result, in, flight->entry);
  }
  co_return handed_over;
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
  Call call{exchange, model, request, result, system_now_ms()};

  const std::vector<std::size_t> missing = co_await look_up(call);
  if (!missing.empty() && request.settings.mode == CacheMode::replay_only) {
    throw CacheMissError("no cached embedding for " + std::to_string(missing.size()) + " of " +
                         std::to_string(result.inputs.size()) + " inputs (model " +
                         request.split.model + ", first key " +
                         result.inputs[missing.front()].storage_key +
                         "), and the mode is replay_only, so the provider was not called");
  }
  Plan first = co_await plan(call, missing);
  co_await send_batch(call, first);
  std::vector<std::size_t> again = co_await wait_for_others(call, first);
  if (!again.empty()) {  // their leader was cancelled: this call sends them itself
    Plan second;
    second.send = std::move(again);
    second.guards.resize(second.send.size());
    co_await send_batch(call, second);
  }
  co_return result;
}

}  // namespace llm_caching::exchange
