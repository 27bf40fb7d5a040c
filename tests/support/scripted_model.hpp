// A Model for unit tests: answers in OpenAI's wire format from the request itself, after an
// optional script of failures, and counts its calls. No sockets.
#pragma once

#include "llm_caching/model.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <deque>
#include <mutex>
#include <string>

namespace llm_caching::testing {

class ScriptedModel : public Model {
 public:
  /// Replies to play before the normal answers (e.g. two 429s).
  void script(NativeResponse reply) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(reply));
  }
  /// Structured-output requests get this JSON text as the message content.
  void set_structured_answer(std::string json_text) {
    std::lock_guard lock(mutex_);
    structured_answer_ = std::move(json_text);
  }
  void set_delay(std::chrono::milliseconds d) { delay_ = d; }
  int calls() const { return calls_.load(); }

  boost::asio::awaitable<NativeResponse> call(const NativeRequest& request) override {
    ++calls_;
    if (delay_.count() > 0) {
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay_);
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
    {
      std::lock_guard lock(mutex_);
      if (!script_.empty()) {
        NativeResponse reply = std::move(script_.front());
        script_.pop_front();
        co_return reply;
      }
    }
    co_return NativeResponse{200, answer(request)};
  }

  /// The answer text for a prompt: "answer to: <last user message>".
  static std::string answer_text(const std::string& prompt) { return "answer to: " + prompt; }

 private:
  std::string answer(const NativeRequest& request) {
    const auto& messages = request.body.at("messages").as_array();
    std::string last(messages.back().as_object().at("content").as_string());
    std::string content = answer_text(last);
    if (request.body.contains("response_format")) {
      std::lock_guard lock(mutex_);
      content = structured_answer_;
    }
    boost::json::object response{
        {"id", "chatcmpl-scripted"},
        {"object", "chat.completion"},
        {"created", 1764000000},
        {"model", request.model},
        {"choices",
         boost::json::array{boost::json::object{
             {"index", 0},
             {"message", boost::json::object{{"role", "assistant"}, {"content", content}}},
             {"finish_reason", "stop"}}}},
        {"usage", boost::json::object{
                      {"prompt_tokens", 1000},
                      {"completion_tokens", 200},
                      {"total_tokens", 1200},
                      {"prompt_tokens_details", boost::json::object{{"cached_tokens", 400}}}}}};
    return boost::json::serialize(response);
  }

  std::mutex mutex_;
  std::deque<NativeResponse> script_;
  std::string structured_answer_ = "{}";
  std::chrono::milliseconds delay_{0};
  std::atomic<int> calls_{0};
};

}  // namespace llm_caching::testing
