// The answer the benches' in-process models give: an OpenAI chat completion, as the API sends it.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace llmc_bench {

inline std::string openai_completion(std::string_view model, std::string_view content,
                                     std::int64_t prompt_tokens, std::int64_t completion_tokens) {
  const boost::json::object response{
      {"id", "chatcmpl-bench"},
      {"object", "chat.completion"},
      {"created", 1764000000},
      {"model", model},
      {"choices", boost::json::array{boost::json::object{
                      {"index", 0},
                      {"message", boost::json::object{{"role", "assistant"}, {"content", content}}},
                      {"finish_reason", "stop"}}}},
      {"usage", boost::json::object{{"prompt_tokens", prompt_tokens},
                                    {"completion_tokens", completion_tokens}}}};
  return boost::json::serialize(response);
}

}  // namespace llmc_bench
