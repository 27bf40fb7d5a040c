// llm-caching ask: one prompt through the cache, from the terminal.
#include "agent/run.hpp"
#include "agent/runtime_impl.hpp"
#include "cli/commands.hpp"
#include "core/ledger.hpp"
#include "gateway/serve_config.hpp"

#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"
#include "providers/http_model.hpp"

#include <fmt/format.h>
#include <boost/json/serialize.hpp>

#include <charconv>
#include <chrono>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>

namespace llm_caching::cli {

namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

// Exit codes beyond main's 1 (other), 2 (configuration) and 3 (replay_only miss).
constexpr int kExitRateLimited = 4;
constexpr int kExitProviderError = 5;

struct AskArgs {
  std::string model;
  std::string prompt;
  std::string system;
  std::optional<double> temperature;
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> seed;
  std::string base_url;
  std::string mode;  ///< empty: LLM_CACHE_MODE, else use
  std::string ns;
  std::string task = "cli";
  std::string ttl = "15d";
  std::string max_wait = "10s";
  std::string initial_wait = "1s";
  std::string ca_file;
  std::string price;
  std::string prices;
  bool verbose = false;
  bool json = false;
};

/// "1h", "15d", "30m", "90s", "250ms", "1h30m"; a bare number is seconds.
milliseconds parse_duration(std::string_view option, std::string_view text) {
  const auto bad = [&] {
    return ConfigurationError(fmt::format(
        "{} '{}' is not a duration: write e.g. 250ms, 90s, 30m, 1h, 15d or 1h30m", option, text));
  };
  if (text.empty()) throw bad();
  milliseconds total{0};
  std::string_view rest = text;
  while (!rest.empty()) {
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || n < 0) throw bad();
    rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
    std::int64_t unit_ms = 1000;
    if (rest.starts_with("ms")) {
      unit_ms = 1, rest.remove_prefix(2);
    } else if (rest.starts_with("s")) {
      rest.remove_prefix(1);
    } else if (rest.starts_with("m")) {
      unit_ms = 60'000, rest.remove_prefix(1);
    } else if (rest.starts_with("h")) {
      unit_ms = 3'600'000, rest.remove_prefix(1);
    } else if (rest.starts_with("d")) {
      unit_ms = 86'400'000, rest.remove_prefix(1);
    } else if (!rest.empty() || total.count() != 0) {
      throw bad();  // a unitless number is only allowed alone
    }
    if (n > (std::int64_t{1} << 50) / unit_ms) throw bad();
    total += milliseconds(n * unit_ms);
  }
  return total;
}

/// "IN,OUT[,CACHE_WRITE,CACHE_READ]" in USD per million tokens.
ModelCosts parse_price(std::string_view text) {
  std::vector<double> rates;
  std::string_view rest = text;
  for (;;) {
    const auto comma = rest.find(',');
    const std::string part(rest.substr(0, comma));
    std::size_t used = 0;
    double v = -1;
    try {
      v = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || !(v >= 0)) {
      throw ConfigurationError(fmt::format(
          "--price '{}': write IN,OUT[,CACHE_WRITE,CACHE_READ] in USD per million tokens", text));
    }
    rates.push_back(v);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (rates.size() != 2 && rates.size() != 4) {
    throw ConfigurationError(fmt::format("--price '{}': give 2 or 4 rates", text));
  }
  ModelCosts costs{rates[0], rates[1], rates.size() == 4 ? rates[2] : rates[0],
                   rates.size() == 4 ? rates[3] : rates[0]};
  costs.source = "--price";
  return costs;
}

/// `-` reads standard input, less one trailing newline: `echo "Hello" | llm-caching ask -` then
/// sends (and keys) what `llm-caching ask "Hello"` does. Only one: blank lines a prompt ends with
/// on purpose stay.
std::string read_prompt(const std::string& prompt) {
  if (prompt != "-") return prompt;
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (text.ends_with("\r\n")) {
    text.resize(text.size() - 2);
  } else if (text.ends_with('\n')) {
    text.pop_back();
  }
  return text;
}

json::object usage_to_json(const Usage& u) {
  return {{"input_tokens", u.input_tokens},
          {"output_tokens", u.output_tokens},
          {"cache_write_tokens", u.cache_write_tokens},
          {"cache_read_tokens", u.cache_read_tokens},
          {"requests", u.requests}};
}

json::object result_to_json(const RunResult& r, milliseconds latency) {
  json::array messages;
  for (const ModelMessage& m : r.messages) {
    messages.push_back(json::object{{"role", m.role}, {"content", m.content}});
  }
  return {{"output", r.output},
          {"output_json", r.output_json ? *r.output_json : json::value(nullptr)},
          {"messages", std::move(messages)},
          {"usage", usage_to_json(r.usage)},
          {"model", r.model},
          {"finish_reason", r.finish_reason},
          {"cost", core::dollars_text(r.cost_nano_usd)},
          {"cost_nano_usd", r.cost_nano_usd},
          {"cache_hit", r.cache_hit},
          {"coalesced", r.coalesced},
          {"stale", r.stale},
          {"attempts", r.attempts},
          {"avoided_cost", core::dollars_text(r.avoided_cost_nano_usd)},
          {"avoided_cost_nano_usd", r.avoided_cost_nano_usd},
          {"cache_key", r.cache_key},
          {"latency_ms", latency.count()}};
}

void print_verbose(const RunResult& r, milliseconds latency) {
  const Usage& u = r.usage;
  std::cerr << fmt::format(
      "{} {} | tokens: {} in, {} out, {} cache read, {} cache write | cost ${:.6f}{} | "
      "latency {} ms | key {}\n",
      r.stale ? "STALE" : (r.cache_hit ? "HIT" : (r.coalesced ? "COALESCED" : "MISS")), r.model,
      u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, r.cost,
      r.cache_hit || r.coalesced ? fmt::format(" (saved ${:.6f})", r.avoided_cost) : "",
      latency.count(), r.cache_key);
}

RunOptions make_run_options(const AskArgs& a, const GlobalOptions& global,
                            const agent::ModelSpec& spec) {
  RunOptions options;
  options.cache_url = global.cache_url;
  // Without --mode: LLM_CACHE_MODE (the runtime's, read once), else use.
  options.mode =
      a.mode.empty() ? Runtime::default_runtime().options().mode : parse_cache_mode(a.mode);
  options.namespace_ = a.ns;
  options.ttl = parse_duration("--ttl", a.ttl);
  options.max_wait = parse_duration("--max-wait", a.max_wait);
  options.initial_wait = parse_duration("--initial-wait", a.initial_wait);
  // The file's entries, then --price for this model on top: the narrower setting wins.
  if (!a.prices.empty()) {
    const CostTable file = gateway::load_price_file(a.prices, "--prices");
    for (const auto& [model, costs] : file.entries()) {
      options.custom_costs.insert_or_assign(model, costs);
    }
  }
  if (!a.price.empty()) options.custom_costs[spec.model] = parse_price(a.price);
  // Built here rather than inside the run so that --ca-file reaches the HTTPS client.
  providers::HttpClientOptions http;
  http.ca_file = a.ca_file;
  options.model_client =
      providers::make_http_model(Runtime::default_runtime().impl().pool, *spec.host, a.base_url, "",
                                 http, *options.mode != CacheMode::replay_only);
  return options;
}

void run_ask(const AskArgs& a, const GlobalOptions& global) {
  const agent::ModelSpec spec = agent::parse_model_spec(a.model);
  Agent agent;
  agent.model = a.model;
  agent.system_prompt = a.system;
  agent.base_url = a.base_url;
  agent.settings.temperature = a.temperature;
  agent.settings.max_tokens = a.max_tokens;
  agent.settings.seed = a.seed;
  RunOptions options = make_run_options(a, global, spec);
  const std::string prompt = read_prompt(a.prompt);

  const auto started = std::chrono::steady_clock::now();
  RunResult result;
  try {
    result = cached_agent_run_sync(agent, prompt, a.task, std::move(options));
  } catch (const RateLimitError& e) {
    std::cerr << fmt::format("llm-caching: rate limited: {} (attempts {}, waited {} ms)\n",
                             e.what(), e.attempts(), e.waited().count());
    throw CLI::RuntimeError(kExitRateLimited);
  } catch (const ProviderError& e) {
    std::cerr << "llm-caching: provider error: " << e.what() << '\n';
    throw CLI::RuntimeError(kExitProviderError);
  }
  const auto latency =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);

  if (a.json || global.json) {
    std::cout << json::serialize(result_to_json(result, latency)) << '\n';
  } else {
    std::cout << result.output << '\n';
  }
  if (a.verbose) print_verbose(result, latency);
}

}  // namespace

void add_ask_command(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<AskArgs>();
  CLI::App* ask =
      app.add_subcommand("ask", "Send one prompt through the cache and print the answer");
  ask->add_option("PROMPT", args->prompt,
                  "The prompt; - reads it from standard input (less one trailing newline)")
      ->required();
  ask->add_option("-m,--model", args->model,
                  "prefix:model — openai:, anthropic:, google-gla: (gemini:), or an "
                  "OpenAI-compatible host: groq:, deepseek:, openrouter:, together:, mistral:, "
                  "ollama:, vllm:, llamacpp:")
      ->required();
  ask->add_option("--system", args->system, "System prompt");
  ask->add_option("--temperature", args->temperature, "Sampling temperature");
  ask->add_option("--max-tokens", args->max_tokens, "Output token limit");
  ask->add_option("--seed", args->seed, "Sampling seed (where the provider supports it)");
  ask->add_option("--base-url", args->base_url,
                  "Provider base URL (else OPENAI_BASE_URL, ANTHROPIC_BASE_URL, GEMINI_BASE_URL, "
                  "GROQ_BASE_URL, ..., else the public endpoint)");
  ask->add_option("--mode", args->mode,
                  "Cache mode: use | refresh | bypass | read_only | replay_only (a miss exits 3 "
                  "and never calls the provider); default: $LLM_CACHE_MODE, else use");
  ask->add_option("--namespace", args->ns, "Cache namespace (part of the storage key)");
  ask->add_option("--task", args->task, "Task name for the expense record")->capture_default_str();
  ask->add_option("--ttl", args->ttl, "How long the answer stays cached: 90s, 30m, 1h, 15d")
      ->capture_default_str();
  ask->add_option("--max-wait", args->max_wait,
                  "Longest total wait for rate limits and transient faults")
      ->capture_default_str();
  ask->add_option("--initial-wait", args->initial_wait, "First backoff wait")
      ->capture_default_str();
  ask->add_option("--ca-file", args->ca_file,
                  "Extra CA certificate (PEM) to trust for the provider (else "
                  "$LLM_CACHING_CA_FILE; SSL_CERT_FILE replaces the system store)");
  ask->add_option("--price", args->price,
                  "Price of this model if the built-in table lacks it: IN,OUT[,CACHE_WRITE,"
                  "CACHE_READ] USD per million tokens");
  ask->add_option("--prices", args->prices,
                  "Price file, as serve's: this project's format (data/model_costs.json) or "
                  "LiteLLM's model_prices_and_context_window.json; its entries win over the "
                  "built-in table");
  ask->add_flag("-v,--verbose", args->verbose,
                "Also print HIT/MISS/STALE, tokens, cost, latency and the cache key to stderr");
  ask->add_flag("--json", args->json, "Print the whole RunResult as JSON");
  ask->footer(
      "Examples:\n"
      "  OPENAI_API_KEY=sk-... llm-caching ask -v --model openai:gpt-4o-mini \"Hello\"\n"
      "  llm-caching ask --model ollama:llama3.2 --json \"Why is the sky blue?\"\n"
      "  llm-caching --cache-url sqlite:///tmp/c.db ask --model anthropic:claude-3-5-haiku-latest "
      "--mode replay_only \"Hello\"\n"
      "Exit codes: 0 ok, 1 other error, 2 configuration or usage error (e.g. missing API key, "
      "unknown option), "
      "3 replay_only miss, 4 rate limited beyond --max-wait, 5 provider error (HTTP error, bad "
      "answer, TLS verification failed).\n"
      "Environment: LLM_CACHE_STALE_IF_ERROR=SECONDS answers from an entry expired by at most "
      "that long when the provider fails, LLM_CACHE_STALE_WHILE_REVALIDATE=SECONDS at once while "
      "one call refreshes it (-v says STALE); entries are kept that much past their --ttl.\n");
  ask->callback([args, &global] { run_ask(*args, global); });
}

}  // namespace llm_caching::cli
