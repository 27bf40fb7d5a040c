// The cache key contract (DESIGN §3): sha256 over the provider, the model and the request JSON
// canonicalised per RFC 8785 with volatile fields removed.
#pragma once

#include <boost/json/error.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace llm_caching {

enum class Provider { openai, anthropic, gemini };

/// "openai", "anthropic", "gemini".
std::string_view to_string(Provider p) noexcept;
/// Accepts "openai", "anthropic", "gemini" (and "google-gla", "google" for gemini); throws
/// ConfigurationError naming the accepted values otherwise.
Provider parse_provider(std::string_view name);

/// Which of a provider's APIs a native request is for. `chat` is each provider's conversation
/// API (OpenAI chat completions, Anthropic messages, Gemini generateContent); the others are
/// the further calls the gateway caches: OpenAI's Responses API, legacy completions and
/// moderations, Anthropic's messages/count_tokens and Gemini's countTokens (`count_tokens`),
/// OpenAI's embeddings (the gateway keys each input apart). Part of the key: the same body sent
/// to two APIs never shares an entry.
enum class Api { chat, responses, completions, count_tokens, moderations, embeddings };

/// "chat", "responses", "completions", "count_tokens", "moderations", "embeddings".
std::string_view to_string(Api api) noexcept;

struct KeyDerivation {
  std::string hex;                   ///< lowercase sha256 hex of `material`
  std::string material;              ///< exactly the bytes that were hashed
  std::string canonical_request;     ///< the RFC 8785 form of the request after removals
  std::vector<std::string> dropped;  ///< JSON pointers of removed or renumbered fields
};

/// Derives the key of a native request.
/// `model` is the model id as sent (for Gemini it comes from the URL, not the body).
/// `scope` partitions the cache (the gateway passes a hash of the caller's API key; empty =
/// shared).
KeyDerivation derive_key(Provider provider, std::string_view model,
                         const boost::json::value& request, std::string_view scope = {});
/// The same for a body held as an object (NativeRequest::body), which the overload above would
/// first copy into a json::value.
KeyDerivation derive_key(Provider provider, std::string_view model,
                         const boost::json::object& request, std::string_view scope = {});
/// The key of a request to another of the provider's APIs. For Api::chat it is the key above;
/// otherwise the material names the API after the provider ("openai/responses"), and the
/// volatile fields are that API's (the Responses API keeps `store` in the key: whether the
/// provider kept the answer decides whether its id can be named by `previous_response_id`).
KeyDerivation derive_key(Provider provider, Api api, std::string_view model,
                         const boost::json::object& request, std::string_view scope = {});

/// `llm-caching:v1:<namespace>:<hex>`; an empty namespace becomes "default".
std::string storage_key(std::string_view namespace_, std::string_view hex);

/// RFC 8785 (JSON Canonicalization Scheme) serialisation: object members sorted by UTF-16 code
/// units, numbers in ECMAScript form, minimal string escaping. Integers beyond 2^53 are written
/// exactly rather than rounded through a double, so distinct large seeds never share a key.
std::string canonical_json(const boost::json::value& v);

/// Errors of parse_json_exact beyond Boost.JSON's own.
enum class JsonError { duplicate_key = 1 };
boost::system::error_code make_error_code(JsonError e) noexcept;

/// Parses JSON text like boost::json::parse, but with correctly rounded doubles and no repeated
/// keys. Boost.JSON 1.81 rounds about one in seven 17-digit numbers to the wrong neighbouring
/// double, so a request parsed with it keys differently from the same request built in code or
/// sent by Python. An object that names a key twice is refused (JsonError::duplicate_key): a
/// parser keeps one of the two values, and another parser (the provider's) may keep the other,
/// so the cache key and the answer could describe different requests. Parse request bodies that
/// keys are derived from with this. Throws ConfigurationError for text that is not valid JSON
/// (naming a repeated key); the error_code overload reports that instead and returns null, with
/// the repeated key in `*duplicate_key` when asked for.
boost::json::value parse_json_exact(std::string_view text);
boost::json::value parse_json_exact(std::string_view text, boost::json::error_code& ec,
                                    std::string* duplicate_key = nullptr);

}  // namespace llm_caching

template <>
struct boost::system::is_error_code_enum<llm_caching::JsonError> : std::true_type {};
