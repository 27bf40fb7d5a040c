// Cache key derivation (DESIGN §3): provider, model, scope and the canonical request minus
// volatile fields, hashed with SHA-256.
#include "llm_caching/cache_key.hpp"

#include "core/canonical_json.hpp"
#include "core/sha256.hpp"
#include "core/text.hpp"
#include "llm_caching/errors.hpp"

#include <openssl/evp.h>
#include <boost/json/kind.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>

namespace llm_caching {
namespace {

namespace json = boost::json;

constexpr std::string_view key_material_version = "llm-caching/v1\n";
constexpr std::string_view storage_key_prefix = "llm-caching:v1:";
constexpr std::size_t max_namespace_bytes = 128;

// Top-level fields that never change what the model answers. "request_id"/"timestamp" style
// fields are not part of any provider's API but some clients add them; they would make every
// request unique. Gemini's model and stream flag live in the URL, not in the body.
constexpr std::array<std::string_view, 3> generic_volatile_fields = {"request_id", "requestId",
                                                                     "timestamp"};
constexpr std::array<std::string_view, 5> openai_volatile_fields = {"stream", "stream_options",
                                                                    "user", "metadata", "store"};
constexpr std::array<std::string_view, 2> anthropic_volatile_fields = {"stream", "metadata"};
// The Responses API keeps "store" in the key: an answer the provider did not keep has an id
// that a later previous_response_id cannot name, so a store:true request must not be served
// one. "background" requests are not cached at all (the gateway bypasses them).
constexpr std::array<std::string_view, 4> responses_volatile_fields = {"stream", "stream_options",
                                                                       "user", "metadata"};

bool is_volatile_field(Provider provider, Api api, std::string_view name) {
  const auto listed = [name](const auto& fields) {
    return std::find(fields.begin(), fields.end(), name) != fields.end();
  };
  if (listed(generic_volatile_fields)) return true;
  if (api == Api::responses) return listed(responses_volatile_fields);
  switch (provider) {
    case Provider::openai:
      return listed(openai_volatile_fields);
    case Provider::anthropic:
      return listed(anthropic_volatile_fields);
    case Provider::gemini:
      return false;
  }
  return false;
}

// RFC 6901 escaping of one reference token.
void append_pointer_token(std::string& pointer, std::string_view token) {
  pointer.push_back('/');
  for (char c : token) {
    if (c == '~') {
      pointer.append("~0");
    } else if (c == '/') {
      pointer.append("~1");
    } else {
      pointer.push_back(c);
    }
  }
}

// Collects the edits of one derivation: removed top-level fields and renumbered tool-call ids.
class VolatileFieldCollector {
 public:
  explicit VolatileFieldCollector(std::vector<std::string>& dropped) : dropped_(dropped) {}

  void omit(const json::value& v, std::string_view name) {
    omitted_.push_back(&v);
    std::string pointer;
    append_pointer_token(pointer, name);
    dropped_.push_back(std::move(pointer));
  }

  // Provider-generated ids carry no meaning beyond linking a call to its result, so they are
  // replaced by placeholders numbered by first appearance: the same id gets the same number,
  // which keeps the link pattern (and only the pattern) in the key.
  void renumber_id(const json::object& holder, std::string_view field, const std::string& pointer) {
    const json::value* id = holder.if_contains(field);
    if (id == nullptr || !id->is_string()) return;
    const std::string_view original = id->get_string();
    auto [it, inserted] = numbers_.try_emplace(original, numbers_.size() + 1);
    replaced_.emplace_back(id, "call_" + std::to_string(it->second));
    std::string id_pointer = pointer;
    append_pointer_token(id_pointer, field);
    dropped_.push_back(std::move(id_pointer));
  }

  detail::CanonicalEdits sorted_edits() {
    std::sort(omitted_.begin(), omitted_.end(), std::less<>{});
    std::sort(replaced_.begin(), replaced_.end(),
              [](const auto& a, const auto& b) { return std::less<>{}(a.first, b.first); });
    return {omitted_, replaced_};
  }

 private:
  std::vector<std::string>& dropped_;
  std::vector<const json::value*> omitted_;
  std::vector<std::pair<const json::value*, std::string>> replaced_;
  std::unordered_map<std::string_view, std::size_t> numbers_;
};

std::string index_pointer(std::string_view parent, std::size_t index) {
  std::string pointer(parent);
  pointer.push_back('/');
  pointer.append(std::to_string(index));
  return pointer;
}

// Calls visit(element_object, element_pointer) for each object element of obj[field] (an array).
template <typename Visit>
void for_each_object_in(const json::object& obj, std::string_view field, const std::string& pointer,
                        Visit&& visit) {
  const json::value* v = obj.if_contains(field);
  if (v == nullptr || !v->is_array()) return;
  std::string array_pointer = pointer;
  append_pointer_token(array_pointer, field);
  const json::array& elements = v->get_array();
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (const json::object* element = elements[i].if_object()) {
      visit(*element, index_pointer(array_pointer, i));
    }
  }
}

// OpenAI chat completions: messages[].tool_calls[].id and messages[].tool_call_id.
void renumber_openai_ids(const json::object& request, VolatileFieldCollector& collector) {
  for_each_object_in(request, "messages", "", [&](const json::object& message, auto&& at) {
    for_each_object_in(message, "tool_calls", at, [&](const json::object& call, auto&& call_at) {
      collector.renumber_id(call, "id", call_at);
    });
    collector.renumber_id(message, "tool_call_id", at);
  });
}

// Anthropic messages: content blocks tool_use (`id`) and tool_result (`tool_use_id`), including
// the server_tool_use / *_tool_result variants, which link the same way.
void renumber_anthropic_ids(const json::object& request, VolatileFieldCollector& collector) {
  for_each_object_in(request, "messages", "", [&](const json::object& message, auto&& at) {
    for_each_object_in(message, "content", at, [&](const json::object& block, auto&& block_at) {
      const json::value* type = block.if_contains("type");
      if (type == nullptr || !type->is_string()) return;
      const std::string_view kind = type->get_string();
      if (kind == "tool_use" || kind.ends_with("_tool_use")) {
        collector.renumber_id(block, "id", block_at);
      } else if (kind == "tool_result" || kind.ends_with("_tool_result")) {
        collector.renumber_id(block, "tool_use_id", block_at);
      }
    });
  });
}

// Gemini generateContent: contents[].parts[].functionCall.id and .functionResponse.id
// (the REST API also accepts the proto field names function_call / function_response).
void renumber_gemini_ids(const json::object& request, VolatileFieldCollector& collector) {
  for_each_object_in(request, "contents", "", [&](const json::object& content, auto&& at) {
    for_each_object_in(content, "parts", at, [&](const json::object& part, auto&& part_at) {
      for (std::string_view field :
           {"functionCall", "function_call", "functionResponse", "function_response"}) {
        const json::value* call = part.if_contains(field);
        if (call == nullptr || !call->is_object()) continue;
        std::string call_pointer = part_at;
        append_pointer_token(call_pointer, field);
        collector.renumber_id(call->get_object(), "id", call_pointer);
      }
    });
  });
}

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b < 0x20 || b == 0x7F;
  });
}

// Rejected so that the newline-separated key material stays unambiguous.
void validate_key_parts(std::string_view model, std::string_view scope) {
  if (model.empty()) throw ConfigurationError("cache key needs a model id; got an empty one");
  if (has_control_char(model)) {
    throw ConfigurationError("model id must not contain control characters");
  }
  if (has_control_char(scope)) {
    throw ConfigurationError("cache scope must not contain control characters");
  }
}

}  // namespace

std::string_view to_string(Provider p) noexcept {
  switch (p) {
    case Provider::openai:
      return "openai";
    case Provider::anthropic:
      return "anthropic";
    case Provider::gemini:
      return "gemini";
  }
  return "unknown";
}

std::string_view to_string(Api api) noexcept {
  switch (api) {
    case Api::chat:
      return "chat";
    case Api::responses:
      return "responses";
    case Api::completions:
      return "completions";
    case Api::count_tokens:
      return "count_tokens";
    case Api::moderations:
      return "moderations";
    case Api::embeddings:
      return "embeddings";
  }
  return "unknown";
}

Provider parse_provider(std::string_view name) {
  if (name == "openai") return Provider::openai;
  if (name == "anthropic") return Provider::anthropic;
  if (name == "gemini" || name == "google-gla" || name == "google") return Provider::gemini;
  const bool printable = name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
                           return c >= 0x20 && c < 0x7F;
                         });
  throw ConfigurationError("unknown provider" +
                           (printable ? " \"" + std::string(name) + "\"" : std::string()) +
                           "; expected openai, anthropic or gemini (also: google, google-gla)");
}

KeyDerivation derive_key(Provider provider, std::string_view model,
                         const boost::json::value& request, std::string_view scope) {
  const json::object* body = request.if_object();
  if (body == nullptr) {
    validate_key_parts(model, scope);
    throw ConfigurationError("request to derive a cache key from must be a JSON object, got " +
                             std::string(json::to_string(request.kind())));
  }
  return derive_key(provider, model, *body, scope);
}

KeyDerivation derive_key(Provider provider, std::string_view model, const boost::json::object& body,
                         std::string_view scope) {
  return derive_key(provider, Api::chat, model, body, scope);
}

KeyDerivation derive_key(Provider provider, Api api, std::string_view model,
                         const boost::json::object& body, std::string_view scope) {
  validate_key_parts(model, scope);
  KeyDerivation key;
  VolatileFieldCollector collector(key.dropped);
  for (const auto& member : body) {
    if (is_volatile_field(provider, api, member.key())) {
      collector.omit(member.value(), member.key());
    }
  }
  switch (provider) {
    case Provider::openai:
      renumber_openai_ids(body, collector);
      break;
    case Provider::anthropic:
      renumber_anthropic_ids(body, collector);
      break;
    case Provider::gemini:
      renumber_gemini_ids(body, collector);
      break;
  }

  // Chat keys name the provider alone (unchanged since v1); another API adds "/<api>".
  std::string provider_name(to_string(provider));
  if (api != Api::chat) provider_name.append("/").append(to_string(api));
  key.material.reserve(key_material_version.size() + provider_name.size() + model.size() +
                       scope.size() + 3 + 1024);
  key.material.append(key_material_version);
  key.material.append(provider_name).push_back('\n');
  key.material.append(model).push_back('\n');
  key.material.append(scope).push_back('\n');
  const std::size_t request_offset = key.material.size();
  detail::append_canonical_json(key.material, body, collector.sorted_edits());
  key.canonical_request = key.material.substr(request_offset);
  key.hex = core::sha256_hex(key.material);
  return key;
}

std::string storage_key(std::string_view namespace_, std::string_view hex) {
  if (namespace_.size() > max_namespace_bytes) {
    throw ConfigurationError("cache namespace is longer than " +
                             std::to_string(max_namespace_bytes) + " bytes");
  }
  const bool unparseable = std::any_of(namespace_.begin(), namespace_.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return c == ':' || c == ' ' || b < 0x20 || b == 0x7F;
  });
  if (unparseable) {
    throw ConfigurationError(
        "cache namespace must not contain ':', whitespace or control characters");
  }
  const bool is_sha256_hex = hex.size() == 64 && std::all_of(hex.begin(), hex.end(), [](char c) {
                               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                             });
  if (!is_sha256_hex) {
    throw ConfigurationError("storage key needs a 64-digit lowercase hex SHA-256 digest");
  }
  std::string key;
  key.reserve(storage_key_prefix.size() + std::max<std::size_t>(namespace_.size(), 7) + 1 +
              hex.size());
  key.append(storage_key_prefix);
  key.append(namespace_.empty() ? std::string_view("default") : namespace_);
  key.push_back(':');
  key.append(hex);
  return key;
}

namespace core {

namespace {
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
}  // namespace

// The digest is fetched once and a context reused per thread: per-call lookups cost more than
// hashing a small request (DESIGN §9).
std::string sha256_hex(std::string_view data) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx(EVP_MD_CTX_new());
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int digest_length = 0;
  if (sha256 == nullptr || ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest.data(), &digest_length) != 1) {
    throw Error("OpenSSL could not compute SHA-256");
  }
  return hex(std::string_view(reinterpret_cast<const char*>(digest.data()), digest_length));
}

}  // namespace core

}  // namespace llm_caching
