// Pass-through: every path under /v1/, /v1beta/ or /upload/ that is not a cached route (files,
// batches, uploads, audio, images, models, fine-tuning, a stored response by id, ...) goes to the
// provider's upstream as it came (method, query, headers, body bytes, multipart and binary
// included) and its answer comes back as it was, never cached. The auth rules are the cached
// routes': the caller's credential (or the configured key) in the provider's own header, a
// keyless caller refused when keys are required; no credential or query reaches a log line.
#include "gateway/gateway.hpp"

#include "core/text.hpp"

#include "gateway/controls.hpp"
#include "gateway/route_parts.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace llm_caching::gateway {

namespace {

/// The path of an origin-form target, without its query.
std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

/// /v1/* is OpenAI's unless the caller speaks Anthropic (its version header, or its key header
/// without a bearer token); /v1beta/*, /v1alpha/* and /upload/* are Gemini's.
Provider provider_of(std::string_view path, const Headers& headers) {
  if (path.starts_with("/v1beta/") || path.starts_with("/v1alpha/") ||
      path.starts_with("/upload/")) {
    return Provider::gemini;
  }
  const bool anthropic_version = !find_header(headers, "anthropic-version").empty();
  const bool anthropic_key =
      !find_header(headers, "x-api-key").empty() && find_header(headers, "authorization").empty();
  return anthropic_version || anthropic_key ? Provider::anthropic : Provider::openai;
}

/// The index in kPassthroughClasses of a path: its first segment after the version
/// ("/v1/files/f-1/content" -> files; "/v1/fine_tuning/jobs" -> fine_tuning).
std::size_t class_of(std::string_view path) {
  for (std::string_view prefix : {"/upload/v1beta/", "/v1beta/", "/v1alpha/", "/v1/"}) {
    if (!path.starts_with(prefix)) continue;
    std::string_view segment = path.substr(prefix.size());
    segment = segment.substr(0, segment.find('/'));
    if (prefix == "/upload/v1beta/") segment = "uploads";
    if (segment == "messages") segment = "batches";  // Anthropic: /v1/messages/batches
    const auto* found = std::find(kPassthroughClasses.begin(), kPassthroughClasses.end(), segment);
    if (found != kPassthroughClasses.end()) return found - kPassthroughClasses.begin();
    break;
  }
  return kPassthroughClasses.size() - 1;  // "other"
}

/// The upstream request: the caller's method, path and query on the provider's base URL, its
/// headers as the cached routes forward them, except that its own content type (a multipart
/// boundary) is kept.
providers::HttpRequest upstream_request(const Upstream& upstream, const IncomingRequest& request,
                                        std::string_view credential) {
  providers::HttpRequest http;
  http.method = request.method;
  std::string_view rest = request.target;
  // OpenAI-style base URLs end in the version: ".../v1" + "/files".
  if (upstream.provider == Provider::openai && rest.starts_with("/v1/")) rest.remove_prefix(3);
  http.url = upstream.base_url + std::string(rest);
  http.headers = providers::request_headers(upstream, &request.headers, credential);
  std::erase_if(http.headers, [](const auto& h) { return h.first == "content-type"; });
  if (const std::string_view type = request.header("content-type"); !type.empty()) {
    http.headers.emplace_back("content-type", std::string(type));
  }
  http.body = request.body;
  return http;
}

bool is_hop_by_hop(std::string_view original) {
  const std::string name = core::lowercase(original);
  static constexpr std::array<std::string_view, 9> kHopByHop = {
      "connection", "keep-alive", "transfer-encoding", "content-length",    "trailer",
      "te",         "upgrade",    "proxy-connection",  "proxy-authenticate"};
  return std::find(kHopByHop.begin(), kHopByHop.end(), name) != kHopByHop.end();
}

}  // namespace

boost::asio::awaitable<void> Gateway::handle_passthrough(providers::HttpClient& upstream,
                                                         const IncomingRequest& request,
                                                         Route& route, RequestRecord& record,
                                                         ResponseStream& out) {
  const std::string_view path = path_of(request.target);
  route.provider = provider_of(path, request.headers);
  metrics_.passed_through(class_of(path));
  const std::string credential =
      caller_credential(route.provider, request.headers, route.query_key);
  if (auto refusal = keyless_refusal(config_, metrics_, route.provider,
                                     caller_identity(credential, request.headers))) {
    record.status = refusal->status;
    co_await out.send(std::move(*refusal));
    co_return;
  }
  const Upstream& target = config_.upstreams[route.provider];
  OutgoingResponse response;
  try {
    providers::HttpResponse answer =
        co_await upstream.send(upstream_request(target, request, credential));
    response.status = answer.status;
    response.body = std::move(answer.body);
    for (auto& [name, value] : answer.headers) {
      if (!is_hop_by_hop(name)) response.headers.emplace_back(std::move(name), std::move(value));
    }
  } catch (const providers::TransportError& e) {
    response = forwarding_failure(metrics_, route.provider, e);
    record.outcome = Outcome::error;
  }
  record.status = response.status;
  co_await out.send(std::move(response));
}

}  // namespace llm_caching::gateway
