// The fake provider's routes and behaviours (see README.md): which API a request is for, what
// behaviour it asks for, and the reply; the wire formats are in fake_openai.cpp,
// fake_anthropic.cpp and fake_gemini.cpp, the answer itself in fake_call.cpp.
#include "fake_logic.hpp"

#include "fake_call.hpp"

#include "cache/fnv1a.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cstring>
#include <variant>

namespace llm_caching::fake {

using cache::fnv1a64;

std::string Request::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::string Request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    }
  }
  return {};
}

namespace {

/// Decodes %XX escapes in a path segment, as real servers do with the model in a Gemini URL
/// (clients encode "+" as %2B). A malformed escape is kept as it is.
std::string percent_decode(std::string_view text) {
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && digit(text[i + 1]) >= 0 &&
        digit(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(digit(text[i + 1]) * 16 + digit(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// ---- behaviours -------------------------------------------------------------------------------

bool parse_count(std::string_view token, std::string_view prefix, int* out) {
  if (!token.starts_with(prefix)) return false;
  const auto digits = token.substr(prefix.size());
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *out);
  return ec == std::errc() && end == digits.data() + digits.size() && !digits.empty();
}

void add_behavior(Behaviors& b, std::string_view token) {
  if (token.empty()) return;
  b.tokens.emplace_back(token);
  int n = 0;
  if (parse_count(token, "delay-", &n)) {
    b.delay += std::chrono::milliseconds(n);
  } else if (parse_count(token, "429ms-", &n)) {
    b.failure = "429ms", b.count = n;
  } else if (parse_count(token, "429-", &n)) {
    b.failure = "429", b.count = n;
  } else if (parse_count(token, "gemini-exhausted-", &n)) {
    b.failure = "gemini-exhausted", b.count = n;
  } else if (token == "500" || token == "529" || token == "invalid-json" || token == "truncated" ||
             token == "drop" || token == "reset" || token == "wrong-schema") {
    b.failure = std::string(token);
  } else if (token == "tool-first") {
    b.tool_first = true;
  } else if (b.unknown.empty()) {
    b.unknown = std::string(token);
  }
}

/// Behaviours come from the model name ("gpt-4o+429-2+delay-100") and from the
/// x-fake-behavior header ("429-2, delay-100").
Behaviors parse_behaviors(std::string_view model, std::string_view header) {
  Behaviors b;
  auto split = [&](std::string_view text, std::string_view separators) {
    while (!text.empty()) {
      const auto at = text.find_first_of(separators);
      add_behavior(b, text.substr(0, at));
      if (at == std::string_view::npos) break;
      text.remove_prefix(at + 1);
    }
  };
  if (const auto plus = model.find('+'); plus != std::string_view::npos) {
    split(model.substr(plus + 1), "+");
  }
  split(header, ", +");
  return b;
}

// ---- replies ----------------------------------------------------------------------------------

Reply error_reply(Api api, int status, const std::string& message) {
  switch (api) {
    case Api::anthropic:
      return anthropic::error_reply(status, message);
    case Api::gemini:
      return gemini::error_reply(status, message);
    case Api::openai:
      break;
  }
  return openai::error_reply(status, message);
}

std::optional<Reply> check_auth(Api api, const Request& request) {
  switch (api) {
    case Api::anthropic:
      return anthropic::check_auth(request);
    case Api::gemini:
      return gemini::check_auth(request);
    case Api::openai:
      break;
  }
  return openai::check_auth(request);
}

std::optional<Reply> rate_limit_reply(const Call& call, std::uint64_t calls_so_far) {
  const auto& failure = call.behaviors.failure;
  if (calls_so_far > static_cast<std::uint64_t>(call.behaviors.count)) return std::nullopt;
  if (failure == "gemini-exhausted" && call.api == Api::gemini) return gemini::exhausted_reply();
  Reply reply = error_reply(call.api, 429, "Rate limit reached (fake provider).");
  if (failure == "429ms") {
    reply.headers.emplace_back("retry-after-ms", "50");
  } else {
    reply.headers.emplace_back(call.api == Api::anthropic ? "retry-after" : "Retry-After", "1");
  }
  if (call.api == Api::openai) reply.headers.emplace_back("x-ratelimit-reset-requests", "1s");
  return reply;
}

Reply success_reply(const Call& call) {
  const Answer answer = make_answer(call);
  const Tokens tokens = count_tokens(call, answer);
  Reply reply;
  const std::string request_id = "req_fake" + call.short_hash;
  reply.headers.emplace_back(call.api == Api::anthropic ? "request-id" : "x-request-id",
                             request_id);
  if (call.endpoint != Endpoint::chat) small::answer(call, answer, tokens, reply);
  if (call.streaming) {
    reply.streaming = true;
    if (call.endpoint == Endpoint::chat) {
      if (call.api == Api::openai) reply.events = openai::events(call, answer, tokens);
      if (call.api == Api::anthropic) reply.events = anthropic::events(call, answer, tokens);
      if (call.api == Api::gemini) reply.events = gemini::events(call, answer, tokens);
    }
    reply.headers.emplace_back("Content-Type", "text/event-stream");
    reply.headers.emplace_back("Cache-Control", "no-cache");
    return reply;
  }
  reply.headers.emplace_back("Content-Type", "application/json");
  if (call.endpoint != Endpoint::chat) return reply;
  if (call.api == Api::openai) reply.body = openai::body(call, answer, tokens);
  if (call.api == Api::anthropic) reply.body = anthropic::body(call, answer, tokens);
  if (call.api == Api::gemini) reply.body = gemini::body(call, answer, tokens);
  return reply;
}

void apply_output_faults(const Call& call, Reply& reply) {
  const auto& failure = call.behaviors.failure;
  if (failure == "invalid-json") {
    if (reply.streaming) {
      reply.events.resize(1);
      reply.events.emplace_back("data: {\"broken\": [1, 2\n\n");
      if (call.api == Api::openai) reply.events.emplace_back("data: [DONE]\n\n");
    } else {
      reply.body = reply.body.substr(0, reply.body.size() / 2) + " <<not json";
    }
  }
  if (failure == "truncated") {
    reply.fault = Reply::Fault::truncated;
    if (reply.streaming) {
      for (const auto& event : reply.events) reply.body += event;
      reply.events.clear();
      reply.streaming = false;
    }
  }
}

// ---- routes -----------------------------------------------------------------------------------

/// The API a request's path belongs to.
struct Route {
  Api api = Api::openai;
  Endpoint endpoint = Endpoint::chat;
  std::string key;    ///< what /_stats counts it under
  std::string model;  ///< Gemini's, from the path
  bool gemini_stream_method = false;
};

/// The route of `request`, or the 404 for a path that has none.
std::variant<Route, Reply> find_route(const Request& request) {
  Route route;
  route.key = request.path;
  // Gemini under each version path the real API serves; /_stats counts each apart, so a test
  // sees which version was called.
  std::string gemini_prefix;
  for (const char* version : {"/v1beta/models/", "/v1alpha/models/", "/v1/models/"}) {
    if (request.path.starts_with(version) && request.path.rfind(':') > std::strlen(version)) {
      gemini_prefix = version;
      break;
    }
  }
  if (request.path == "/v1/chat/completions") {
    route.api = Api::openai;
  } else if (request.path == "/v1/messages") {
    route.api = Api::anthropic;
  } else if (request.path == "/v1/responses") {
    route.endpoint = Endpoint::responses;
  } else if (request.path == "/v1/completions") {
    route.endpoint = Endpoint::completions;
  } else if (request.path == "/v1/moderations") {
    route.endpoint = Endpoint::moderations;
    route.model = "omni-moderation-latest";  // the API's default when the body names none
  } else if (request.path == "/v1/messages/count_tokens") {
    route.api = Api::anthropic;
    route.endpoint = Endpoint::count_tokens;
  } else if (!gemini_prefix.empty()) {
    route.api = Api::gemini;
    const auto colon = request.path.rfind(':');
    route.model =
        percent_decode(request.path.substr(gemini_prefix.size(), colon - gemini_prefix.size()));
    const std::string method = request.path.substr(colon + 1);
    if (method != "generateContent" && method != "streamGenerateContent" &&
        method != "countTokens") {
      return error_reply(Api::gemini, 404, "Unknown method " + method);
    }
    if (method == "countTokens") route.endpoint = Endpoint::count_tokens;
    route.gemini_stream_method = method == "streamGenerateContent";
    route.key = gemini_prefix.substr(0, gemini_prefix.size() - 1) + ":" + method;
  } else {
    return error_reply(Api::openai, 404, "No route for " + request.method + " " + request.path);
  }
  return route;
}

/// Fills in what the formats read of a call whose body is the JSON object `body`.
void describe_call(Call& call, const Route& route, json::object body) {
  const Request& request = *call.request;
  call.body = std::move(body);
  call.model = route.model;
  call.hash = fnv1a64(request.body);
  call.short_hash = hex(call.hash).substr(0, 8);
  if (call.api == Api::gemini) {
    call.streaming = route.gemini_stream_method && request.query_param("alt") == "sse";
  } else {
    const auto* stream = call.body.if_contains("stream");
    call.streaming = stream && stream->is_bool() && stream->as_bool();
  }
  const auto* include_usage = find_path(call.body, {"stream_options", "include_usage"});
  call.streaming =
      call.streaming && (call.endpoint == Endpoint::chat || call.endpoint == Endpoint::responses ||
                         call.endpoint == Endpoint::completions);
  call.wants_usage_chunk = call.api == Api::openai && include_usage && include_usage->is_bool() &&
                           include_usage->as_bool();
}

}  // namespace

void Provider::on_connection() {
  std::lock_guard lock(mutex_);
  ++connections_;
}

void Provider::count(const std::string& route, const std::vector<std::string>& behaviors) {
  std::lock_guard lock(mutex_);
  ++total_;
  ++routes_[route];
  for (const auto& behavior : behaviors) ++behaviors_[behavior];
}

int Provider::bump_body_counter(std::uint64_t body_hash) {
  std::lock_guard lock(mutex_);
  return ++calls_per_body_[body_hash];
}

Reply Provider::stats() {
  std::lock_guard lock(mutex_);
  json::object routes, behaviors;
  for (const auto& [route, n] : routes_) routes[route] = n;
  for (const auto& [behavior, n] : behaviors_) behaviors[behavior] = n;
  return json_reply(200, {{"total", total_},
                          {"routes", routes},
                          {"behaviors", behaviors},
                          {"connections", connections_},
                          {"embedding_inputs", embedding_inputs_}});
}

Reply Provider::handle(const Request& request) {
  if (request.path == "/_stats" && request.method == "GET") return stats();
  if (request.path == "/_reset" && request.method == "POST") {
    std::lock_guard lock(mutex_);
    total_ = connections_ = embedding_inputs_ = 0;
    routes_.clear();
    behaviors_.clear();
    calls_per_body_.clear();
    return json_reply(200, {{"reset", true}});
  }
  if (request.path == "/v1/models" && request.method == "GET") {
    json::array models;
    for (const char* id :
         {"gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest", "gemini-2.0-flash"}) {
      models.push_back(
          {{"id", id}, {"object", "model"}, {"created", kCreated}, {"owned_by", "fake"}});
    }
    return json_reply(200, {{"object", "list"}, {"data", models}});
  }
  const bool gemini_embeddings =
      request.path.starts_with("/v1beta/models/") &&
      (request.path.ends_with(":embedContent") || request.path.ends_with(":batchEmbedContents"));
  if ((request.path == "/v1/embeddings" || gemini_embeddings) && request.method == "POST") {
    return embed(request);
  }
  if (request.path == "/v1/files" || request.path.starts_with("/v1/files/")) {
    count("/v1/files", {});
    return files::handle(request);
  }
  return route(request);
}

Reply Provider::route(const Request& request) {
  auto found = find_route(request);
  if (auto* no_route = std::get_if<Reply>(&found)) return std::move(*no_route);
  Route& route = std::get<Route>(found);
  if (request.method != "POST") {
    return error_reply(route.api, 404, "Use POST for " + request.path);
  }
  Call call;
  call.request = &request;
  call.api = route.api;
  call.endpoint = route.endpoint;

  boost::system::error_code parse_error;
  json::value parsed = json::parse(request.body, parse_error);
  if (!parse_error && parsed.is_object() && call.api != Api::gemini) {
    if (const auto* m = parsed.as_object().if_contains("model"); m && m->is_string()) {
      route.model = m->as_string();
    }
  }
  call.behaviors = parse_behaviors(route.model, request.header("x-fake-behavior"));
  count(route.key, call.behaviors.tokens);  // every call counts, errors included

  if (auto denied = check_auth(call.api, request)) return *denied;
  if (parse_error || !parsed.is_object()) {
    return error_reply(call.api, 400, "The request body is not a JSON object.");
  }
  if (route.model.empty()) return error_reply(call.api, 400, "model: field required");
  if (!call.behaviors.unknown.empty()) {
    return error_reply(call.api, 400, "unknown fake behavior '" + call.behaviors.unknown + "'");
  }
  describe_call(call, route, std::move(parsed.as_object()));
  Reply reply = answer(call);
  reply.delay = call.behaviors.delay;
  return reply;
}

Reply Provider::answer(const Call& call) {
  const std::string& failure = call.behaviors.failure;
  if (failure == "drop" || failure == "reset") {
    Reply reply;
    reply.fault = failure == "drop" ? Reply::Fault::drop : Reply::Fault::reset;
    return reply;
  }
  if (failure == "429" || failure == "429ms" || failure == "gemini-exhausted") {
    if (auto limited = rate_limit_reply(call, bump_body_counter(call.hash ^ fnv1a64(failure)))) {
      return std::move(*limited);
    }
  }
  if (failure == "500") {
    return error_reply(call.api, 500, "The server had an error while processing your request.");
  }
  if (failure == "529") {
    return call.api == Api::anthropic ? error_reply(call.api, 529, "Overloaded")
                                      : error_reply(call.api, 503, "The model is overloaded.");
  }
  Reply reply = success_reply(call);
  apply_output_faults(call, reply);
  return reply;
}

}  // namespace llm_caching::fake
