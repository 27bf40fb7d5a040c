// The fake provider's answers as a pure function of the request plus a few counters.
// No sockets here: fake_server.cpp does the HTTP, this decides what to say (fake_logic.cpp routes
// and applies the behaviours, fake_call.cpp makes the answer, fake_openai.cpp,
// fake_anthropic.cpp and fake_gemini.cpp write it in each API's wire format).
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llm_caching::fake {

struct Request {
  std::string method;
  std::string path;                                          // without the query
  std::string query;                                         // after '?', raw
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;

  std::string header(std::string_view lower_name) const;
  std::string query_param(std::string_view name) const;
};

struct Reply {
  enum class Fault { none, drop, reset, truncated };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                 // when not streaming
  std::vector<std::string> events;  // SSE events, each already framed ("data: ...\n\n")
  bool streaming = false;
  Fault fault = Fault::none;
  std::chrono::milliseconds delay{0};
};

/// A JSON value that fits `schema` (JSON Schema or Gemini's OpenAPI subset), or with `wrong`,
/// one that does not.
boost::json::value sample_for_schema(const boost::json::value& schema, bool wrong);

struct Call;

class Provider {
 public:
  Reply handle(const Request& request);
  void on_connection();

 private:
  Reply route(const Request& request);
  /// The reply the call's behaviour asks for (a failure, or the answer with its faults).
  Reply answer(const Call& call);
  Reply stats();
  Reply embed(const Request& request);
  void count(const std::string& route, const std::vector<std::string>& behaviors);
  int bump_body_counter(std::uint64_t body_hash);

  std::mutex mutex_;
  std::uint64_t total_ = 0;
  std::uint64_t connections_ = 0;
  std::uint64_t embedding_inputs_ = 0;  ///< inputs answered by /v1/embeddings
  std::map<std::string, std::uint64_t> routes_;
  std::map<std::string, std::uint64_t> behaviors_;
  std::unordered_map<std::uint64_t, int> calls_per_body_;
};

}  // namespace llm_caching::fake
