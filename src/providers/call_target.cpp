#include "providers/call_target.hpp"

#include <boost/url/parse.hpp>

#include <array>
#include <utility>

namespace llm_caching::providers {

namespace {

struct PathSuffix {
  std::string_view suffix;
  Provider provider;
  Api api;
};

// Longest first where one ends another ("/chat/completions" before "/completions").
constexpr std::array kSuffixes{
    PathSuffix{"/v1/messages/count_tokens", Provider::anthropic, Api::count_tokens},
    PathSuffix{"/v1/messages", Provider::anthropic, Api::chat},
    PathSuffix{"/chat/completions", Provider::openai, Api::chat},
    PathSuffix{"/responses", Provider::openai, Api::responses},
    PathSuffix{"/completions", Provider::openai, Api::completions},
    PathSuffix{"/moderations", Provider::openai, Api::moderations},
};

std::optional<CallTarget> gemini_target(std::string_view origin, std::string_view path,
                                        const boost::urls::url_view& url) {
  // google-genai sends v1 by default, the REST examples v1beta; the call goes to v1beta, which
  // serves everything v1 does (v1alpha's previews are not recognised: they go as they are).
  std::string_view prefix = "/v1beta/models/";
  auto at = path.find(prefix);
  if (at == std::string_view::npos) {
    prefix = "/v1/models/";
    at = path.find(prefix);
  }
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view rest = path.substr(at + prefix.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view action = rest.substr(colon + 1);
  CallTarget target;
  target.provider = Provider::gemini;
  target.base_url = std::string(origin) + std::string(path.substr(0, at));
  target.model = std::string(rest.substr(0, colon));
  bool sse = false;
  for (const auto& param : url.params()) {
    if (param.key == "alt") sse = param.has_value && param.value == "sse";
    if (param.key == "key" && param.has_value) target.query_key = std::string(param.value);
  }
  if (action == "generateContent") return target;
  if (action == "countTokens") {
    target.api = Api::count_tokens;
    return target;
  }
  if (action == "streamGenerateContent" && sse) {
    target.stream = true;
    return target;
  }
  return std::nullopt;
}

}  // namespace

std::optional<CallTarget> recognise_call(std::string_view method, std::string_view url_text) {
  if (method != "POST") return std::nullopt;
  const auto parsed = boost::urls::parse_absolute_uri(url_text);
  if (!parsed || !parsed->has_authority()) return std::nullopt;
  const boost::urls::url_view& url = *parsed;
  if (url.scheme() != "http" && url.scheme() != "https") return std::nullopt;
  // scheme://authority, without user info (a key never travels in the base URL we keep).
  const std::string origin =
      std::string(url.scheme()) + "://" + std::string(url.encoded_host_and_port());
  std::string path = url.path();  // percent-decoded (Gemini's "%2B" behaviours)
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (auto gemini = gemini_target(origin, path, url)) return gemini;
  for (const PathSuffix& known : kSuffixes) {
    if (!path.ends_with(known.suffix)) continue;
    CallTarget target;
    target.provider = known.provider;
    target.api = known.api;
    // Anthropic's suffix carries its version (the base URL is the host root); OpenAI's base URL
    // ends in its version, and the suffix is what follows it.
    target.base_url = origin + path.substr(0, path.size() - known.suffix.size());
    if (known.api == Api::moderations) target.model = "omni-moderation-latest";
    return target;
  }
  return std::nullopt;
}

}  // namespace llm_caching::providers
