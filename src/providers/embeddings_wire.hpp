// The wire formats of the embeddings calls cached per input (exchange/embeddings.hpp: the
// gateway's embeddings routes and the library's cached_embed): how a body splits into inputs,
// what a request for one input is (its key), the upstream request for the inputs the cache did
// not hold, and the answers both ways. Pure.
#pragma once

#include "llm_caching/cache_key.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::providers::embeddings {

/// A request body that is not an embeddings request; what() names what to fix.
class BadInput : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// OpenAI's POST /v1/embeddings; Gemini's :embedContent (one input) and :batchEmbedContents.
enum class Wire { openai, gemini_one, gemini_batch };

Provider provider_of(Wire wire) noexcept;

struct Request {
  Wire wire = Wire::openai;
  std::string model;
  /// The body without its inputs (OpenAI: every field but "input"; Gemini: nothing).
  boost::json::object base;
  std::vector<boost::json::value> inputs;
};

/// Splits a request body (the model of a Gemini call comes from its path). Throws BadInput.
/// OpenAI: a string or a token array is one input, an array of them several. Gemini: the body of
/// :embedContent is one input, each of :batchEmbedContents' "requests" is one (their "model"
/// members are left out: the path names the model).
Request read_request(Wire wire, std::string route_model, boost::json::object body);

/// The request for one input alone: what its key is derived from. Gemini's :embedContent body
/// and an item of :batchEmbedContents for the same content key alike.
boost::json::object key_body(const Request& request, const boost::json::value& input);

/// The upstream request for `inputs` (OpenAI: the caller's own shape when it sent one input;
/// Gemini: always :batchEmbedContents).
boost::json::object upstream_body(const Request& request,
                                  const std::vector<const boost::json::value*>& inputs);

/// Reads an upstream answer for `count` inputs: their embeddings' JSON texts in order (RFC 8785
/// form) and the model it names, if any. Returns "" or what is wrong with the answer.
std::string read_answer(Wire wire, std::string_view response, std::size_t count,
                        std::vector<std::string>& embeddings, std::string& model);

/// The answer to the caller, every embedding in its order in the wire's own shape, as pieces to
/// write one after the other: the JSON around the embeddings (written into `glue`, which the
/// pieces point into) and the embeddings themselves, not copied (an answer of 100 embeddings is
/// megabytes; the gateway writes the pieces with gather I/O).
std::vector<std::string_view> answer_pieces(Wire wire,
                                            const std::vector<std::string_view>& embeddings,
                                            std::string_view model, std::int64_t sent_tokens,
                                            std::string& glue);
/// answer_pieces joined into one body.
std::string answer_body(Wire wire, const std::vector<std::string_view>& embeddings,
                        std::string_view model, std::int64_t sent_tokens);

/// Shares `total` among parts by weight (the provider reports one total for a batch); the
/// remainder goes to the last part.
std::vector<std::int64_t> shares(std::int64_t total, const std::vector<std::size_t>& weights);

}  // namespace llm_caching::providers::embeddings
