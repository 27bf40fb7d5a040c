// Expense recording: the seed's `expense_recorder(model, task_name, cost)` callback, plus a richer
// `Expense` record. Called once per run: with the cost of the provider call, or with 0 on a hit.
#pragma once

#include "llm_caching/usage.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <concepts>
#include <functional>
#include <string>
#include <type_traits>

namespace llm_caching {

struct Expense {
  std::string model;  ///< "provider:model" as the Agent named it
  std::string task_name;
  Usage usage;                ///< tokens of the answer (on a hit: of the original call; requests 0)
  double cost = 0.0;          ///< dollars billed by this run: 0 on a hit
  double avoided_cost = 0.0;  ///< dollars a hit saved (the original call's cost)
  std::int64_t cost_nano_usd = 0;
  std::int64_t avoided_cost_nano_usd = 0;
  bool cache_hit = false;
  std::string cache_key;
  std::chrono::microseconds latency{0};
  int attempts = 0;  ///< provider calls made, retries included (0 on a hit)
};

/// Holds either recorder shape, awaitable or plain:
///   (std::string model, std::string task_name, double cost) -> awaitable<void> | void
///   (const Expense&) -> awaitable<void> | void
class ExpenseRecorder {
 public:
  ExpenseRecorder() = default;

  template <class F>
  requires std::invocable<F&, std::string, std::string, double> ExpenseRecorder(
      F f)  // NOLINT(google-explicit-constructor): assigned from lambdas, as in the seed
      : fn_(adapt([f = std::move(f)](const Expense& e) mutable {
          return f(e.model, e.task_name, e.cost);
        })) {}

  template <class F>
  requires(std::invocable<F&, const Expense&> &&
           !std::invocable<F&, std::string, std::string, double>)
      ExpenseRecorder(F f)  // NOLINT(google-explicit-constructor)
      : fn_(adapt(std::move(f))) {}

  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
  boost::asio::awaitable<void> operator()(const Expense& e) const { return fn_(e); }

 private:
  using Fn = std::function<boost::asio::awaitable<void>(const Expense&)>;

  template <class G>
  static Fn adapt(G g) {
    using R = std::invoke_result_t<G&, const Expense&>;
    if constexpr (std::is_void_v<R>) {
      return [g = std::move(g)](const Expense& e) mutable -> boost::asio::awaitable<void> {
        g(e);
        co_return;
      };
    } else {
      static_assert(std::is_same_v<R, boost::asio::awaitable<void>>,
                    "an expense recorder returns void or boost::asio::awaitable<void>");
      return [g = std::move(g)](const Expense& e) mutable { return g(e); };
    }
  }

  Fn fn_;
};

}  // namespace llm_caching
