// The shared parts of the routes' answers (route_parts.hpp).
#include "gateway/route_parts.hpp"

#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/sse.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

namespace llm_caching::gateway {

namespace json = boost::json;

// (Responses are built in plain functions: g++ 12 rejects braced nested initializer lists as
// arguments inside coroutines.)
OutgoingResponse typed_response(int status, std::string_view content_type, std::string body) {
  OutgoingResponse response{status, {}, std::move(body)};
  response.headers.emplace_back("content-type", std::string(content_type));
  return response;
}

OutgoingResponse error_response(Provider provider, int status, std::string_view message) {
  return typed_response(status, kJson, error_body(provider, status, message));
}

Headers cost_trailers(const exchange::ExchangeResult& result) {
  return {{"x-llm-cost-usd", format_usd(result.cost_nano_usd)},
          {"x-llm-avoided-usd", format_usd(result.avoided_nano_usd)}};
}

Headers answer_headers(std::string_view content_type, std::string_view cache,
                       const exchange::ExchangeResult& result) {
  Headers headers = cost_trailers(result);
  headers.emplace_back("content-type", std::string(content_type));
  headers.emplace_back("x-llm-cache", std::string(cache));
  headers.emplace_back("x-llm-cache-key", result.storage_key);
  return headers;
}

asio::awaitable<exchange::ExchangeResult> run_then_close(exchange::Exchange& exchange, Model& model,
                                                         exchange::ExchangeRequest request,
                                                         Relay& relay) {
  struct CloseOnExit {
    Relay& relay;
    ~CloseOnExit() { relay.close(); }
  } close_on_exit{relay};
  co_return co_await exchange.run(model, std::move(request));
}

asio::awaitable<void> write_relay(Relay& relay, ResponseStream& out,
                                  std::function<Headers()> make_head) {
  for (;;) {
    while (!relay.chunks.empty()) {
      const std::string chunk = std::move(relay.chunks.front());
      relay.chunks.pop_front();
      if (relay.client_gone) continue;  // keep draining: the answer is still stored whole
      if (!relay.head_sent) {
        relay.head_sent = true;
        if (!co_await out.begin_chunked(200, make_head())) {
          relay.client_gone = true;
          continue;
        }
      }
      if (!co_await out.write_chunk(chunk)) relay.client_gone = true;
    }
    if (relay.closed) co_return;
    relay.wake.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ignored;
    co_await relay.wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

/// Gemini's :streamGenerateContent without alt=sse answers one JSON array of the chunks.
asio::awaitable<exchange::ExchangeResult> run_relayed(exchange::Exchange& exchange, Model& model,
                                                      exchange::ExchangeRequest request,
                                                      Relay& relay, ResponseStream& out) {
  using namespace asio::experimental::awaitable_operators;
  auto key = std::make_shared<std::string>();
  request.storage_key_out = key;
  auto make_head = [key, mode = request.mode]() {
    return Headers{{"content-type", std::string(kEventStream)},
                   {"cache-control", "no-cache"},
                   {"x-llm-cache", std::string(cache_status(mode, false))},
                   {"x-llm-cache-key", *key},
                   {"trailer", "x-llm-cost-usd, x-llm-avoided-usd"}};
  };
  request.relay = [&relay](std::string_view chunk) { relay.push(chunk); };
  co_return co_await (run_then_close(exchange, model, std::move(request), relay) &&
                      write_relay(relay, out, make_head));
}

std::string sse_to_json_array(std::string_view sse) {
  providers::SseParser parser;
  json::array chunks;
  for (const auto& event : parser.feed(sse)) {
    if (event.data.empty() || event.data == "[DONE]") continue;
    chunks.push_back(parse_json_exact(event.data));
  }
  return json::serialize(chunks);
}

/// The answer to a request that failed in the exchange, in the provider's format. An upstream
/// HTTP error this call saw itself is passed through unchanged.
OutgoingResponse forwarding_failure(Metrics& metrics, Provider provider,
                                    const providers::TransportError& error) {
  using Kind = providers::TransportError::Kind;
  if (error.kind() == Kind::too_large) {
    metrics.refused(Refusal::upstream_too_large);
    log_refusal(Refusal::upstream_too_large,
                "an upstream answer passed --max-upstream-response-bytes; answered 502");
  }
  return error_response(
      provider, error.kind() == Kind::timeout ? 504 : 502,
      "upstream unreachable: " + providers::describe_transport_failure(error.kind()));
}

void count_upstream_too_large(Metrics& metrics, std::exception_ptr failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const ProviderError& e) {
    if (e.http_status() != 0 || e.error_type() != "too_large") return;
  } catch (...) {
    return;
  }
  metrics.refused(Refusal::upstream_too_large);
  log_refusal(Refusal::upstream_too_large,
              "an upstream answer passed --max-upstream-response-bytes; answered 502");
}

bool is_budget_refusal(std::exception_ptr failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const BudgetExceededError&) {
    return true;
  } catch (...) {
    return false;
  }
}

OutgoingResponse failure_response(Provider provider, std::exception_ptr failure,
                                  const std::optional<UpstreamModel::ErrorAnswer>& upstream) {
  auto pass_through = [&]() {
    OutgoingResponse r{upstream->status, {}, upstream->body};
    r.headers.emplace_back("content-type", upstream->content_type.empty() ? std::string(kJson)
                                                                          : upstream->content_type);
    if (upstream->retry_after) {
      r.headers.emplace_back("retry-after",
                             std::to_string((upstream->retry_after->count() + 999) / 1000));
    }
    return r;
  };
  try {
    std::rethrow_exception(failure);
  } catch (const CacheMissError& e) {
    // RFC 9111's only-if-cached: 504. The message names the call and the key it derived.
    return error_response(provider, 504, std::string(e.what()) + " (only-if-cached)");
  } catch (const BudgetExceededError& e) {
    // Not the provider's rate limit: a type of its own, so clients can tell them apart.
    OutgoingResponse r =
        typed_response(429, kJson, error_body(provider, 429, e.what(), "budget_exceeded"));
    r.headers.emplace_back("x-llm-budget-remaining-usd", format_usd(e.remaining_nano_usd()));
    return r;
  } catch (const RateLimitError& e) {
    if (upstream && upstream->status == 429) return pass_through();
    OutgoingResponse r = error_response(provider, 429, e.what());
    if (e.last_retry_after()) {
      r.headers.emplace_back("retry-after",
                             std::to_string((e.last_retry_after()->count() + 999) / 1000));
    }
    return r;
  } catch (const ProviderError& e) {
    const int status = e.http_status();
    if (status == 0 && e.error_type() == "too_large") {
      return error_response(provider, 502,
                            "the upstream's response was larger than this gateway accepts "
                            "(--max-upstream-response-bytes); it was not relayed or cached");
    }
    if (status == 0) {
      return e.error_type() == "timeout"
                 ? error_response(provider, 504, std::string("upstream timed out: ") + e.what())
                 : error_response(provider, 502, std::string("upstream unreachable: ") + e.what());
    }
    if (status < 300) {
      return error_response(
          provider, 502, std::string("upstream answered with an unusable response: ") + e.what());
    }
    if (upstream && upstream->status == status) return pass_through();
    return error_response(provider, status, e.what());
  } catch (const ConfigurationError& e) {
    // The library's hint is for its programmers; a gateway's caller can only ask the operator.
    std::string message = e.what();
    constexpr std::string_view kLibraryHint = "pass custom_costs or load a LiteLLM price file";
    if (const auto at = message.find(kLibraryHint); at != std::string::npos) {
      message.replace(at, kLibraryHint.size(),
                      "this gateway has no price for it (its operator can add one with "
                      "llm-caching serve --prices FILE)");
    }
    return error_response(provider, 400, message);
  } catch (const CacheError& e) {
    return error_response(provider, 503, std::string("cache unavailable: ") + e.what());
  } catch (const std::exception& e) {
    spdlog::error("gateway: unexpected failure: {}", e.what());
    return error_response(provider, 500, "internal error in the gateway");
  }
}

bool never_cached(Api api, const json::object& body) {
  if (api != Api::responses) return false;
  const json::value* background = body.if_contains("background");
  return background && background->is_bool() && background->as_bool();
}

Outcome outcome_of(std::string_view cache_header) {
  if (cache_header == "HIT" || cache_header == "COALESCED" || cache_header == "STALE") {
    return Outcome::hit;
  }
  if (cache_header == "MISS") return Outcome::miss;
  return Outcome::bypass;
}

std::optional<OutgoingResponse> keyless_refusal(const GatewayConfig& config, Metrics& metrics,
                                                Provider provider, std::string_view identity) {
  if (!config.require_key || !identity.empty()) return std::nullopt;
  metrics.refused(Refusal::no_key);
  return error_response(provider, 401,
                        "this gateway requires an API key (Authorization: Bearer, x-api-key, "
                        "x-goog-api-key, ?key= or api-key)");
}

std::string request_scope(const GatewayConfig& config, TenantScopeMemo& scopes,
                          std::string_view identity, const Headers& headers, const Route& route,
                          std::string_view endpoint) {
  const std::string tenant = config.share_across_keys ? std::string() : scopes(identity);
  const std::string shaping = answer_shaping_headers(headers);
  // The versions serve different features (and may answer differently): never one for another.
  // v1beta keeps the scope the library's keys have.
  std::string api;
  if (route.provider == Provider::gemini && route.gemini_version != kGeminiDefaultVersion) {
    api = "gemini-api=" + std::string(route.gemini_version);
  }
  return providers::key_scope(providers::ScopeParts{
      .tenant = tenant, .endpoint = endpoint, .shaping = shaping, .api = api});
}

}  // namespace llm_caching::gateway
