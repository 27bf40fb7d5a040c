// Which provider call an SDK's HTTP request is: the provider, the API, the endpoint's base URL and
// what the URL carries (Gemini's model and stream flag, a `key` query). Pure; the library's
// cached_http_call (the Python front's transport) is built on it.
#pragma once

#include "llm_caching/cache_key.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace llm_caching::providers {

struct CallTarget {
  Provider provider = Provider::openai;
  Api api = Api::chat;
  /// What endpoint_url() prepends: OpenAI-style ".../v1", Anthropic's and Gemini's host root.
  std::string base_url;
  std::string model;      ///< Gemini: from the path; the others name it in the body
  bool stream = false;    ///< Gemini: :streamGenerateContent with alt=sse; the others: the body
  std::string query_key;  ///< Gemini's `?key=`; a secret
};

/// The cached call an SDK's request is, or nullopt for any other request (GET, uploads,
/// embeddings, Gemini's streams without alt=sse, Gemini's v1alpha): those go to the provider as
/// they are. Recognised by the path's end: /chat/completions, /responses, /completions,
/// /moderations (OpenAI-style, under any base path), /v1/messages and /v1/messages/count_tokens
/// (Anthropic), /v1beta/models/M:generateContent, :streamGenerateContent?alt=sse and
/// :countTokens (Gemini; /v1/models/... too, sent on as v1beta).
std::optional<CallTarget> recognise_call(std::string_view method, std::string_view url);

}  // namespace llm_caching::providers
