// 02 — described structs: in the conversation history and as a typed answer.
//
// The seed passed a pydantic model in the history as `profile.model_dump_json()`. In C++ the
// model is a plain struct described with Boost.Describe; the library turns it into JSON. The same
// description gives a typed answer: cached_agent_run<T> sends T's JSON Schema as the
// structured-output request and parses the reply into T (a reply that does not fit T is a
// ProviderError naming the field, and is not cached).
//
// Environment: OPENAI_API_KEY (and OPENAI_BASE_URL), LLM_CACHE_REDIS_URL, as in 01_basic.
#include <llm_caching/agent.hpp>

#include <boost/describe/class.hpp>
#include <boost/json/object.hpp>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

// [readme:profile]
struct UserProfile {
  std::string name;
  int age = 0;
  std::vector<std::string> interests;
};
BOOST_DESCRIBE_STRUCT(UserProfile, (), (name, age, interests))
// [/readme:profile]

// [readme:typed-output]
struct ProfileAnalysis {
  std::string summary;
  std::vector<std::string> suggested_topics;
  bool likes_machine_learning = false;
};
BOOST_DESCRIBE_STRUCT(ProfileAnalysis, (), (summary, suggested_topics, likes_machine_learning))
// [/readme:typed-output]

int main() try {
  using namespace llm_caching;
  Agent agent{.model = "openai:gpt-4o-mini", .system_prompt = "You analyse user profiles."};

  // [readme:history]
  UserProfile profile{
      .name = "John Doe", .age = 30, .interests = {"AI", "C++", "Machine Learning"}};

  // As the seed wrote it: a {"role", "content"} object whose content is the profile's JSON ...
  RunOptions options;
  options.transcript_history = {
      boost::json::object{{"role", "user"}, {"content", to_json_string(profile)}}};
  RunResult analysis =
      cached_agent_run_sync(agent, "Analyze this profile", "profile_analysis", options);

  // ... or the struct itself, which becomes the same user message.
  options.transcript_history = {profile};
  // [/readme:history]
  RunResult same =
      cached_agent_run_sync(agent, "Analyze this profile", "profile_analysis", options);
  std::cout << "history as JSON: " << (analysis.cache_hit ? "HIT" : "MISS") << ": "
            << analysis.output << "\n"
            << "history as struct: " << (same.cache_hit ? "HIT" : "MISS")
            << " (same request, same key: " << (same.cache_key == analysis.cache_key ? "yes" : "no")
            << ")\n";

  // [readme:typed-run]
  TypedRunResult<ProfileAnalysis> typed = cached_agent_run_sync<ProfileAnalysis>(
      agent, "Analyze this profile", "profile_analysis", options);
  const ProfileAnalysis& data = typed.data;  // parsed and validated
  // [/readme:typed-run]
  std::cout << "typed: " << (typed.cache_hit ? "HIT" : "MISS") << "\n"
            << "  summary: " << data.summary << "\n"
            << "  suggested_topics: " << data.suggested_topics.size() << "\n"
            << "  likes_machine_learning: " << std::boolalpha << data.likes_machine_learning << "\n"
            << "  as JSON: " << to_json_string(data) << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "example_02_typed_history failed: " << e.what() << "\n";
  return 1;
}
