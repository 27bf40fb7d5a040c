// The embeddings wire formats (embeddings_wire.hpp).
#include "providers/embeddings_wire.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>

namespace llm_caching::providers::embeddings {

namespace json = boost::json;

namespace {

std::vector<json::value> split_openai_input(const json::value& input) {
  if (input.is_string()) return {input};
  if (!input.is_array() || input.as_array().empty()) {
    throw BadInput("\"input\" must be a string, an array of strings or token arrays");
  }
  const json::array& list = input.as_array();
  if (list.front().is_number()) return {input};  // one input given as tokens
  return {list.begin(), list.end()};
}

/// A Gemini input: an EmbedContentRequest without its "model" (the path names it).
json::value gemini_input(json::value item) {
  if (!item.is_object() || !item.as_object().contains("content")) {
    throw BadInput("each embedding request needs a \"content\" object");
  }
  item.as_object().erase("model");
  return item;
}

/// The sizes of the texts, for one allocation of the answer.
std::size_t total_size(const std::vector<std::string_view>& texts) {
  std::size_t size = 0;
  for (std::string_view text : texts) size += text.size() + 64;
  return size;
}

}  // namespace

Provider provider_of(Wire wire) noexcept {
  return wire == Wire::openai ? Provider::openai : Provider::gemini;
}

Request read_request(Wire wire, std::string route_model, json::object body) {
  Request request;
  request.wire = wire;
  if (wire == Wire::gemini_one) {
    request.model = std::move(route_model);
    request.inputs.push_back(gemini_input(std::move(body)));
    return request;
  }
  if (wire == Wire::gemini_batch) {
    request.model = std::move(route_model);
    const json::value* list = body.if_contains("requests");
    if (!list || !list->is_array() || list->as_array().empty()) {
      throw BadInput("the request body has no \"requests\" list");
    }
    for (const json::value& item : list->as_array()) request.inputs.push_back(gemini_input(item));
    return request;
  }
  const json::value* model = body.if_contains("model");
  if (!model || !model->is_string() || model->as_string().empty()) {
    throw BadInput("the request body has no \"model\" string");
  }
  request.model = std::string(model->as_string());
  const json::value* input = body.if_contains("input");
  if (!input) throw BadInput("the request body has no \"input\"");
  request.inputs = split_openai_input(*input);
  // Without the inputs: a copy per input for its key would otherwise copy all of them.
  body.erase("input");
  request.base = std::move(body);
  return request;
}

json::object key_body(const Request& request, const json::value& input) {
  if (request.wire != Wire::openai) return input.as_object();
  json::object out = request.base;
  out["input"] = input;
  return out;
}

json::object upstream_body(const Request& request, const std::vector<const json::value*>& inputs) {
  if (request.wire == Wire::openai) {
    json::object out = request.base;
    if (request.inputs.size() == 1) {
      out["input"] = *inputs.front();  // the caller's own shape: a string or tokens
    } else {
      json::array list;
      for (const json::value* input : inputs) list.push_back(*input);
      out["input"] = std::move(list);
    }
    return out;
  }
  const std::string model =
      request.model.starts_with("models/") ? request.model : "models/" + request.model;
  json::array list;
  for (const json::value* input : inputs) {
    json::object item = input->as_object();
    item["model"] = model;
    list.push_back(std::move(item));
  }
  return json::object{{"requests", std::move(list)}};
}

std::string read_answer(Wire wire, std::string_view response, std::size_t count,
                        std::vector<std::string>& embeddings, std::string& model) {
  const json::value answer = parse_json_exact(response);
  const json::object& root = answer.as_object();
  embeddings.assign(count, std::string());
  if (wire != Wire::openai) {  // always :batchEmbedContents: {"embeddings": [...]}, in order
    const json::value* list = root.if_contains("embeddings");
    if (!list || !list->is_array() || list->as_array().size() != count) {
      return "the upstream answered a different number of embeddings than it was sent inputs";
    }
    for (std::size_t j = 0; j < count; ++j) embeddings[j] = canonical_json(list->as_array()[j]);
    return {};
  }
  const json::value* data_value = root.if_contains("data");
  const json::array* data = data_value ? data_value->if_array() : nullptr;
  if (!data || data->size() != count) {
    return "the upstream answered a different number of embeddings than it was sent inputs";
  }
  if (const json::value* m = root.if_contains("model"); m && m->is_string()) {
    model = m->as_string();
  }
  for (const json::value& item : *data) {
    const json::object* object = item.if_object();
    const json::value* index = object ? object->if_contains("index") : nullptr;
    const json::value* embedding = object ? object->if_contains("embedding") : nullptr;
    if (!index || !index->is_int64() || index->as_int64() < 0 ||
        static_cast<std::size_t>(index->as_int64()) >= count || !embedding) {
      return "the upstream answered an embedding without a valid index";
    }
    embeddings[static_cast<std::size_t>(index->as_int64())] = canonical_json(*embedding);
  }
  return {};
}

std::vector<std::string_view> answer_pieces(Wire wire,
                                            const std::vector<std::string_view>& embeddings,
                                            std::string_view model, std::int64_t sent_tokens,
                                            std::string& glue) {
  const std::size_t count = wire == Wire::gemini_one ? 1 : embeddings.size();
  // The glue is written first, then cut: glue piece k (before embedding k, or the tail when k
  // is count) ends at ends[k]. Views are taken once the string no longer grows.
  glue.clear();
  glue.reserve(count * 48 + 128 + model.size());
  std::vector<std::size_t> ends;
  ends.reserve(count + 1);
  if (wire == Wire::gemini_one) {
    glue += R"({"embedding":)";
    ends.push_back(glue.size());
    glue += '}';
  } else if (wire == Wire::gemini_batch) {
    glue += R"({"embeddings":[)";
    for (std::size_t i = 0; i < count; ++i) {
      if (i > 0) glue += ',';
      ends.push_back(glue.size());
    }
    glue += "]}";
  } else {
    glue += R"({"object":"list","data":[)";
    for (std::size_t i = 0; i < count; ++i) {
      if (i > 0) glue += "},";
      glue += R"({"object":"embedding","index":)";
      glue += std::to_string(i);
      glue += R"(,"embedding":)";
      ends.push_back(glue.size());
    }
    glue += R"(}],"model":)" + json::serialize(json::value(model)) +
            R"(,"usage":{"prompt_tokens":)" + std::to_string(sent_tokens) + R"(,"total_tokens":)" +
            std::to_string(sent_tokens) + "}}";
  }
  ends.push_back(glue.size());
  std::vector<std::string_view> pieces;
  pieces.reserve(2 * count + 1);
  const std::string_view all(glue);
  std::size_t start = 0;
  for (std::size_t k = 0; k < count; ++k) {
    pieces.push_back(all.substr(start, ends[k] - start));
    pieces.push_back(embeddings[k]);
    start = ends[k];
  }
  pieces.push_back(all.substr(start, ends[count] - start));
  return pieces;
}

std::string answer_body(Wire wire, const std::vector<std::string_view>& embeddings,
                        std::string_view model, std::int64_t sent_tokens) {
  std::string glue;
  const std::vector<std::string_view> pieces =
      answer_pieces(wire, embeddings, model, sent_tokens, glue);
  std::string out;
  out.reserve(total_size(pieces));
  for (std::string_view piece : pieces) out.append(piece);
  return out;
}

std::vector<std::int64_t> shares(std::int64_t total, const std::vector<std::size_t>& weights) {
  std::size_t sum = 0;
  for (std::size_t w : weights) sum += w;
  std::vector<std::int64_t> out;
  out.reserve(weights.size());
  std::int64_t given = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const std::int64_t share =
        i + 1 == weights.size()
            ? total - given
            : static_cast<std::int64_t>(static_cast<long double>(total) * weights[i] /
                                        std::max<std::size_t>(sum, 1));
    out.push_back(share);
    given += share;
  }
  return out;
}

}  // namespace llm_caching::providers::embeddings
