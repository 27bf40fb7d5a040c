// The parts of a route's answer that the routes share: responses in the provider's format, the
// cost headers, the relay of a streamed miss, the answer to a failed exchange. Internal to the
// gateway (routes.cpp); no Beast here.
#pragma once

#include "exchange/exchange.hpp"
#include "gateway/controls.hpp"
#include "gateway/gateway.hpp"
#include "gateway/http_types.hpp"
#include "gateway/metrics.hpp"
#include "gateway/upstream.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace llm_caching::gateway {

namespace asio = boost::asio;

inline constexpr std::string_view kJson = "application/json";
inline constexpr std::string_view kEventStream = "text/event-stream";

// (Responses are built in plain functions: g++ 12 rejects braced nested initializer lists as
// arguments inside coroutines.)
OutgoingResponse typed_response(int status, std::string_view content_type, std::string body);
OutgoingResponse error_response(Provider provider, int status, std::string_view message);
/// x-llm-cost-usd and x-llm-avoided-usd of a result (headers, or trailers of a relayed stream).
Headers cost_trailers(const exchange::ExchangeResult& result);
Headers answer_headers(std::string_view content_type, std::string_view cache,
                       const exchange::ExchangeResult& result);

/// Chunks of a streamed miss on their way to the client: the exchange pushes (synchronously,
/// from the upstream read), the writer coroutine pops and writes. Both run on one thread.
struct Relay {
  explicit Relay(asio::any_io_executor executor)
      : wake(std::move(executor), asio::steady_timer::time_point::max()) {}
  void push(std::string_view chunk) {
    chunks.emplace_back(chunk);
    wake.cancel();
  }
  void close() {
    closed = true;
    wake.cancel();
  }

  std::deque<std::string> chunks;
  bool closed = false;       ///< the exchange finished (answer complete, or failed)
  bool head_sent = false;    ///< the client got the status line: no error status possible now
  bool client_gone = false;  ///< a write failed; the rest is read, stored, and not sent
  asio::steady_timer wake;
};

/// Runs the exchange and closes the relay however it ends.
asio::awaitable<exchange::ExchangeResult> run_then_close(exchange::Exchange& exchange, Model& model,
                                                         exchange::ExchangeRequest request,
                                                         Relay& relay);
/// Writes the relayed chunks to the client as they come, the head (make_head) before the first.
asio::awaitable<void> write_relay(Relay& relay, ResponseStream& out,
                                  std::function<Headers()> make_head);
/// Runs a streamed request and relays its miss to `out` as it arrives; the head names the key
/// the exchange derived before it relayed anything.
asio::awaitable<exchange::ExchangeResult> run_relayed(exchange::Exchange& exchange, Model& model,
                                                      exchange::ExchangeRequest request,
                                                      Relay& relay, ResponseStream& out);

/// Gemini's :streamGenerateContent without alt=sse answers one JSON array of the chunks.
std::string sse_to_json_array(std::string_view sse);

/// When the exchange failed on an upstream answer over --max-upstream-response-bytes: counts and
/// logs it as Refusal::upstream_too_large.
void count_upstream_too_large(Metrics& metrics, std::exception_ptr failure);
/// Whether `failure` is a hard budget's refusal (BudgetExceededError).
bool is_budget_refusal(std::exception_ptr failure);

/// The answer when a request forwarded as it came (pass-through, the model list) got no usable
/// response: 504 for a timeout, else 502, never naming the upstream; an answer over
/// --max-upstream-response-bytes is counted and logged as Refusal::upstream_too_large.
OutgoingResponse forwarding_failure(Metrics& metrics, Provider provider,
                                    const providers::TransportError& error);

/// The answer to a request that failed in the exchange, in the provider's format. An upstream
/// HTTP error this call saw itself is passed through unchanged.
OutgoingResponse failure_response(Provider provider, std::exception_ptr failure,
                                  const std::optional<UpstreamModel::ErrorAnswer>& upstream);

/// Owns what an UpstreamModel borrows from its request, for a background refresh
/// (stale-while-revalidate) that outlives the request.
class OwnedUpstreamModel final : public Model {
 public:
  /// `api_version`: Gemini's, as the caller's path named it (HttpModel::use_api_version).
  OwnedUpstreamModel(providers::HttpClient& client, const Upstream& upstream, Headers headers,
                     std::string credential, std::string_view api_version)
      : headers_(std::move(headers)),
        credential_(std::move(credential)),
        model_(client, upstream, headers_, credential_) {
    model_.use_api_version(api_version);
  }
  asio::awaitable<NativeResponse> call(const NativeRequest& request) override {
    return model_.call(request);
  }

 private:
  Headers headers_;
  std::string credential_;
  UpstreamModel model_;
};

/// Whether a request to `api` is forwarded without the cache (as with x-llm-cache: bypass): a
/// Responses API request with "background": true answers a queued response whose id the caller
/// then polls; a replay would hand a second caller the first one's job.
bool never_cached(Api api, const boost::json::object& body);

/// The 401 a caller without a credential gets when the gateway requires one (counted in the
/// refusals), or nothing when it may go on. `identity` is caller_identity's.
std::optional<OutgoingResponse> keyless_refusal(const GatewayConfig& config, Metrics& metrics,
                                                Provider provider, std::string_view identity);

/// What a request's key adds to its body (providers::key_scope, the rule the library shares):
/// the caller's tenant partition (none when the gateway shares entries across keys), the
/// upstream's endpoint scope (none for the provider's public service), then the answer-shaping
/// headers (a beta feature or another API version may change the answer: never one for the
/// other). A Gemini route's API version other than v1beta joins it too ("gemini-api=v1").
/// `endpoint`: the route's provider's Gateway::endpoint_scope.
std::string request_scope(const GatewayConfig& config, TenantScopeMemo& scopes,
                          std::string_view identity, const Headers& headers, const Route& route,
                          std::string_view endpoint);

/// One request as the routes see it (gateway.hpp: Gateway::handle).
struct Gateway::Call {
  const IncomingRequest& request;
  Route route;
  RequestRecord record;
};

/// The outcome a cache status counts as in the metrics.
Outcome outcome_of(std::string_view cache_header);

}  // namespace llm_caching::gateway
