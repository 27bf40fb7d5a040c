// 03 — a custom message_converter and expense recorders.
//
// The seed's "Advanced usage": a converter that turns arbitrary history items into
// ModelMessage{role, content}, and an async expense recorder `(model, task_name, cost)` that is
// called once per run, with the provider call's cost on a miss and with 0 on a hit. The richer
// overload takes an Expense record (usage, avoided cost, hit, key, latency).
//
// Environment: OPENAI_API_KEY (and OPENAI_BASE_URL), LLM_CACHE_REDIS_URL, as in 01_basic.
#include <llm_caching/agent.hpp>

#include <boost/json/serialize.hpp>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

// [readme:converter]
// As the seed's custom_message_converter: objects keep their role and content, anything else
// becomes a user message with its text. And one rule of our own: a role the providers do not
// know ("tool", "narrator", ...) becomes "user".
std::string text_of(const boost::json::value* v) {
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->get_string());
  return boost::json::serialize(*v);
}

std::vector<llm_caching::ModelMessage> custom_message_converter(
    const std::vector<llm_caching::HistoryItem>& items) {
  std::vector<llm_caching::ModelMessage> converted;
  for (const llm_caching::HistoryItem& item : items) {
    const boost::json::value& v = item.value();
    if (const boost::json::object* message = v.if_object()) {
      std::string role = text_of(message->if_contains("role"));
      if (role != "system" && role != "assistant") role = "user";
      converted.push_back({role, text_of(message->if_contains("content"))});
    } else {
      converted.push_back({"user", text_of(&v)});
    }
  }
  return converted;
}
// [/readme:converter]

// [readme:recorder]
boost::asio::awaitable<void> my_expense_recorder(std::string model, std::string task_name,
                                                 double cost) {
  // Your expense recording logic here: a database, a metrics service, ...
  std::cout << "Cost for " << model << " on " << task_name << ": $" << cost << "\n";
  co_return;
}
// [/readme:recorder]

int main() try {
  using namespace llm_caching;
  Agent agent{.model = "openai:gpt-4o-mini"};

  // [readme:advanced]
  RunOptions options;
  options.transcript_history = {
      boost::json::object{{"role", "assistant"}, {"content", "Hi! How can I help?"}},
      boost::json::object{{"role", "narrator"}, {"content", "The user waves."}}, "a plain string",
      boost::json::value(42)};
  options.message_converter = custom_message_converter;
  options.expense_recorder = my_expense_recorder;
  RunResult first = cached_agent_run_sync(agent, "Hello", "chat", options);
  // [/readme:advanced]
  for (const ModelMessage& m : first.messages) {
    std::cout << "  " << m.role << ": " << m.content << "\n";
  }

  // The same call again is a hit. This time, the Expense overload (plain or awaitable):
  // [readme:expense]
  options.expense_recorder = [](const Expense& e) {
    std::cout << "Expense: " << e.model << " / " << e.task_name << ": "
              << (e.cache_hit ? "HIT" : "MISS") << ", cost " << e.cost_nano_usd
              << " nano-USD, avoided " << e.avoided_cost_nano_usd << " nano-USD, "
              << e.usage.input_tokens << " in / " << e.usage.output_tokens << " out tokens, "
              << e.latency.count() << " us\n";
  };
  // [/readme:expense]
  RunResult second = cached_agent_run_sync(agent, "Hello", "chat", options);
  return second.cache_hit ? 0 : 1;  // the second call must come from the cache
} catch (const std::exception& e) {
  std::cerr << "example_03_converter_and_recorder failed: " << e.what() << "\n";
  return 1;
}
