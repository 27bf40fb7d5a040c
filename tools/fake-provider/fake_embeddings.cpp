// The fake provider's OpenAI embeddings (POST /v1/embeddings, see README.md): each input gets a
// vector that is a function of its text (or tokens) alone, so a test can tell which inputs were
// sent and check that an answer assembled from cached and fresh vectors is in order.
#include "fake_call.hpp"

#include "cache/fnv1a.hpp"

#include <boost/json.hpp>

#include <cstring>

namespace llm_caching::fake::embeddings {
namespace {

/// The vector of one input: `dimensions` float32 values in [-0.5, 0.5) from its FNV-1a.
std::vector<float> vector_of(const json::value& input, std::int64_t dimensions) {
  const std::string text =
      input.is_string() ? std::string(input.as_string()) : json::serialize(input);
  std::uint64_t h = cache::fnv1a64(text);
  std::vector<float> values;
  for (std::int64_t i = 0; i < dimensions; ++i) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;  // one LCG step per value
    values.push_back(static_cast<float>(static_cast<int>(h >> 52) - 2048) / 4096.0f);
  }
  return values;
}

std::string base64(const std::vector<float>& values) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());  // little-endian float32, as OpenAI
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[n & 63] : '=');
  }
  return out;
}

/// The inputs of a request: a string or a token array is one input; an array of them, many.
std::vector<json::value> inputs_of(const json::value& input) {
  if (!input.is_array() || input.as_array().empty() || input.as_array().front().is_number()) {
    return {input};
  }
  return {input.as_array().begin(), input.as_array().end()};
}

/// Gemini: {"values": [...]} of an EmbedContentRequest's content (its parts' texts).
json::object gemini_embedding(const json::value& item) {
  const json::value* parts =
      item.is_object() ? find_path(item.as_object(), {"content", "parts"}) : nullptr;
  std::string text;
  if (parts && parts->is_array()) {
    for (const auto& part : parts->as_array()) {
      const auto* t = part.is_object() ? part.as_object().if_contains("text") : nullptr;
      if (t && t->is_string()) text += t->as_string();
    }
  }
  std::int64_t dimensions = 8;
  if (const auto* d =
          item.is_object() ? item.as_object().if_contains("outputDimensionality") : nullptr;
      d && d->is_int64()) {
    dimensions = d->as_int64();
  }
  json::array values;
  for (float v : vector_of(json::value(text), dimensions)) values.push_back(static_cast<double>(v));
  return {{"values", std::move(values)}};
}

}  // namespace

Reply handle_gemini(const Request& request, bool batch, std::size_t& inputs_seen) {
  if (auto denied = gemini::check_auth(request)) return *denied;
  boost::system::error_code ec;
  json::value parsed = json::parse(request.body, ec);
  if (ec || !parsed.is_object()) return gemini::error_reply(400, "Invalid JSON payload.");
  if (!batch) {
    inputs_seen = 1;
    return json_reply(200, {{"embedding", gemini_embedding(parsed)}});
  }
  const auto* requests = parsed.as_object().if_contains("requests");
  if (!requests || !requests->is_array()) return gemini::error_reply(400, "requests is required");
  json::array embeddings;
  for (const auto& item : requests->as_array()) embeddings.push_back(gemini_embedding(item));
  inputs_seen = embeddings.size();
  return json_reply(200, {{"embeddings", std::move(embeddings)}});
}

Reply handle(const Request& request, std::size_t& inputs_seen) {
  if (auto denied = openai::check_auth(request)) return *denied;
  boost::system::error_code ec;
  json::value parsed = json::parse(request.body, ec);
  const json::object* body = ec ? nullptr : parsed.if_object();
  const json::value* input = body ? body->if_contains("input") : nullptr;
  const json::value* model = body ? body->if_contains("model") : nullptr;
  if (!input || !model || !model->is_string()) {
    return openai::error_reply(400, "'model' and 'input' are required");
  }
  std::int64_t dimensions = 8;
  if (const auto* d = body->if_contains("dimensions"); d && d->is_int64())
    dimensions = d->as_int64();
  const auto* format = body->if_contains("encoding_format");
  const bool as_base64 = format && format->is_string() && format->as_string() == "base64";
  json::array data;
  std::int64_t tokens = 0;
  const std::vector<json::value> inputs = inputs_of(*input);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<float> values = vector_of(inputs[i], dimensions);
    json::value embedding;
    if (as_base64) {
      embedding = base64(values);
    } else {
      json::array floats;
      for (float v : values) floats.push_back(static_cast<double>(v));
      embedding = std::move(floats);
    }
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
    tokens += std::max<std::int64_t>(1, json::serialize(inputs[i]).size() / 4);
  }
  inputs_seen = inputs.size();
  return json_reply(200, {{"object", "list"},
                          {"data", std::move(data)},
                          {"model", model->as_string()},
                          {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
}

}  // namespace llm_caching::fake::embeddings

namespace llm_caching::fake {

Reply Provider::embed(const Request& request) {
  count(request.path.starts_with("/v1beta/")
            ? "/v1beta/models:" + request.path.substr(request.path.rfind(':') + 1)
            : "/v1/embeddings",
        {});
  std::size_t inputs = 0;
  const bool gemini_batch = request.path.ends_with(":batchEmbedContents");
  Reply reply = request.path.starts_with("/v1beta/")
                    ? embeddings::handle_gemini(request, gemini_batch, inputs)
                    : embeddings::handle(request, inputs);
  std::lock_guard lock(mutex_);
  embedding_inputs_ += inputs;
  return reply;
}

}  // namespace llm_caching::fake
