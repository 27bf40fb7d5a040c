// `llm-caching serve`'s options, grouped as `serve --help` lists them, and how the environment
// and the config file fill those not given.
#include "cli/serve_flags.hpp"

#include "agent/run.hpp"
#include "gateway/stale.hpp"
#include "llm_caching/runtime.hpp"

#include <chrono>
#include <type_traits>

namespace llm_caching::cli {

namespace {

void add_upstream_options(CLI::App& serve, ServeFlags& flags) {
  serve
      .add_option("--listen", flags.listen,
                  "HOST:PORT to listen on; HOST may be a name (localhost); port 0: any free port")
      ->capture_default_str();
  serve.add_option(
      "--upstream", flags.upstreams,
      "provider=URL, e.g. openai=http://127.0.0.1:11434/v1 (default: "
      "$OPENAI_BASE_URL, $ANTHROPIC_BASE_URL, $GEMINI_BASE_URL, else the public APIs)");
  serve.add_option("--upstream-key-env", flags.upstream_key_envs,
                   "provider=ENV_VAR: use this variable's key upstream instead of the caller's");
  serve.add_option("--ca-file", flags.ca_file,
                   "Extra CA certificate (PEM) to trust for upstream TLS (else "
                   "$LLM_CACHING_CA_FILE; SSL_CERT_FILE replaces the system store)");
  serve.add_option("--prices", flags.prices,
                   "Price file for models the built-in table lacks (or prices differently): this "
                   "project's format (data/model_costs.json) or LiteLLM's "
                   "model_prices_and_context_window.json; its entries win");
  serve.add_flag("--share-cache-across-keys", flags.share_across_keys,
                 "Let callers with different API keys share cache entries (default: partitioned)");
  serve.add_flag("--reject-unpriced", flags.reject_unpriced,
                 "Refuse models missing from the price table (default: serve them, costed $0)");
  serve.add_flag("--require-key", flags.require_key,
                 "Refuse callers that send no API key (401) instead of serving them from the "
                 "keyless partition");
  serve.add_option("--budget", flags.budgets,
                   "A spending limit, e.g. 'task=nightly-eval:20usd/day' (scopes: task, tenant "
                   "(x-llm-user, else the key's hash), tag, namespace, or all:AMOUNTusd/month); "
                   "a call over it gets 429 budget_exceeded. Repeatable");
  serve.add_option("--soft-budget", flags.soft_budgets,
                   "Like --budget, but a call over it is only logged. Repeatable");
  serve.add_flag("--no-ledger", flags.no_ledger,
                 "Write no ledger record of the calls (default: every call is recorded in the "
                 "cache's ledger; see llm-caching costs)");
  serve.add_option(
      "--ledger-spill-dir", flags.ledger_spill_dir,
      "Where ledger records wait while the cache backend is down (default: "
      "$LLM_CACHE_LEDGER_SPILL_DIR, else ledger-spill beside the embedded cache file)");
}

void add_limit_options(CLI::App& serve, ServeFlags& flags) {
  serve
      .add_option("--threads", flags.threads,
                  "Worker threads (0: one per core; docs/GATEWAY.md says when fewer help)")
      ->capture_default_str();
  serve
      .add_option("--body-limit", flags.body_limit,
                  "Largest request body in bytes (else 413); raise it for large inline images")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      .add_option("--max-body-bytes-in-flight", flags.max_body_bytes_in_flight,
                  "Request-body bytes held at once, over all connections (else 503)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      .add_option("--max-connections", flags.max_connections,
                  "Open client connections (else 503); 0: from the open-file limit")
      ->capture_default_str();
  serve
      .add_option("--max-header-fields", flags.max_header_fields,
                  "Header fields in one request (else 431)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10000}));
  serve
      .add_option("--max-header-bytes", flags.max_header_bytes,
                  "Bytes of one request's head: request line and header fields (else 431)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1} << 24));
  serve
      .add_option("--max-request-line", flags.max_request_line,
                  "Bytes of one request line: method, path and query, version (else 414)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{64}, std::uint64_t{1} << 24));
  serve
      .add_option("--max-upstream-response-bytes", flags.max_upstream_response_bytes,
                  "Largest upstream answer (or stream) relayed or cached (else 502)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      .add_option("--max-wait-cap-ms", flags.max_wait_cap_ms,
                  "The most a caller may ask for with x-llm-max-wait-ms (larger values are cut)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{3600000}));
  serve.add_option("--l1-mb", flags.l1_mib, "In-memory L1 size in MiB (0 disables it)")
      ->capture_default_str();
  serve.add_option("--ttl", flags.ttl_seconds, "Default entry lifetime in seconds")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{10} * 366 * 24 * 3600));
}

void add_timing_options(CLI::App& serve, ServeFlags& flags) {
  serve
      .add_option("--max-wait-ms", flags.max_wait_ms,
                  "Retry budget for upstream 429/5xx (per request: x-llm-max-wait-ms)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve.add_option("--initial-wait-ms", flags.initial_wait_ms, "First backoff wait")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      .add_option("--upstream-timeout-ms", flags.upstream_timeout_ms,
                  "Longest upstream silence before 504")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve.add_option("--connect-timeout-ms", flags.connect_timeout_ms, "Upstream connect timeout")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      .add_option("--upstream-idle-timeout-ms", flags.upstream_idle_timeout_ms,
                  "Closes an upstream keep-alive connection unused this long")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      .add_option("--request-timeout-ms", flags.request_timeout_ms,
                  "Longest wait for a request's first byte (keep-alive idle), then for its body")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      .add_option("--header-timeout-ms", flags.header_timeout_ms,
                  "Longest time from a request's first byte to the end of its head (else 408: "
                  "slow clients holding connections)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      .add_option("--shutdown-grace-ms", flags.shutdown_grace_ms,
                  "On SIGINT/SIGTERM, how long requests in flight may take to finish")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
}

void add_stale_options(CLI::App& serve, ServeFlags& flags) {
  const auto stale_range = CLI::Range(std::int64_t{0}, gateway::kMaxStaleSeconds);
  serve
      .add_option("--stale-while-revalidate", flags.stale_while_revalidate_seconds,
                  "SECONDS: answer from an entry expired by at most this long at once, while one "
                  "background call refreshes it (0: off; per request: Cache-Control "
                  "stale-while-revalidate=N, x-llm-cache: no-stale)")
      ->capture_default_str()
      ->check(stale_range);
  serve
      .add_option("--stale-if-error", flags.stale_if_error_seconds,
                  "SECONDS: answer from an entry expired by at most this long when the upstream "
                  "fails (429 past the retry budget, 5xx, unreachable; 0: off; per request: "
                  "Cache-Control stale-if-error=N). Entries are kept for their TTL plus the "
                  "larger window. Unset: $LLM_CACHE_STALE_IF_ERROR, as for the library "
                  "($LLM_CACHE_STALE_WHILE_REVALIDATE likewise)")
      ->capture_default_str()
      ->check(stale_range);
  serve
      .add_option("--mode", flags.mode,
                  "Cache mode of requests whose headers set none: use | refresh | bypass | "
                  "read_only | replay_only (a miss answers 504 and never calls the upstream: CI "
                  "from recorded answers, docs/TESTING.md). Unset: $LLM_CACHE_MODE, else use")
      ->check(CLI::IsMember(
          {"use", "refresh", "bypass", "read_only", "read-only", "replay_only", "replay-only"}));
  serve.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

}  // namespace

void add_serve_options(CLI::App& serve, ServeFlags& flags) {
  add_upstream_options(serve, flags);
  add_limit_options(serve, flags);
  add_timing_options(serve, flags);
  add_stale_options(serve, flags);
}

void apply_environment(ServeFlags& flags, const RuntimeOptions& env) {
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  if (!flags.given("--stale-while-revalidate")) {
    flags.stale_while_revalidate_seconds =
        duration_cast<seconds>(env.stale_while_revalidate).count();
  }
  if (!flags.given("--stale-if-error")) {
    flags.stale_if_error_seconds = duration_cast<seconds>(env.stale_if_error).count();
  }
  if (!flags.given("--mode")) flags.mode = std::string(to_string(env.mode));
}

void apply_file(const gateway::ServeFileSettings& file, GlobalOptions& global, ServeFlags& flags) {
  auto take = [&](std::string_view flag, const auto& from, auto& to) {
    if (from && !flags.given(flag)) to = static_cast<std::remove_reference_t<decltype(to)>>(*from);
  };
  take("--listen", file.listen, flags.listen);
  take("--log-level", file.log_level, flags.log_level);
  take("--mode", file.mode, flags.mode);
  take("--prices", file.prices, flags.prices);
  take("--ca-file", file.ca_file, flags.ca_file);
  take("--share-cache-across-keys", file.share_cache_across_keys, flags.share_across_keys);
  take("--reject-unpriced", file.reject_unpriced, flags.reject_unpriced);
  take("--require-key", file.require_key, flags.require_key);
  if (!flags.given("--budget")) flags.budgets = file.budgets;
  if (!flags.given("--soft-budget")) flags.soft_budgets = file.soft_budgets;
  take("--max-wait-cap-ms", file.max_wait_cap_ms, flags.max_wait_cap_ms);
  take("--max-connections", file.max_connections, flags.max_connections);
  take("--max-body-bytes-in-flight", file.max_body_bytes_in_flight, flags.max_body_bytes_in_flight);
  take("--max-header-fields", file.max_header_fields, flags.max_header_fields);
  take("--max-header-bytes", file.max_header_bytes, flags.max_header_bytes);
  take("--max-request-line", file.max_request_line, flags.max_request_line);
  take("--max-upstream-response-bytes", file.max_upstream_response_bytes,
       flags.max_upstream_response_bytes);
  take("--header-timeout-ms", file.header_timeout_ms, flags.header_timeout_ms);
  take("--threads", file.threads, flags.threads);
  take("--body-limit", file.body_limit, flags.body_limit);
  take("--l1-mb", file.l1_mb, flags.l1_mib);
  take("--ttl", file.ttl, flags.ttl_seconds);
  take("--max-wait-ms", file.max_wait_ms, flags.max_wait_ms);
  take("--initial-wait-ms", file.initial_wait_ms, flags.initial_wait_ms);
  take("--upstream-timeout-ms", file.upstream_timeout_ms, flags.upstream_timeout_ms);
  take("--connect-timeout-ms", file.connect_timeout_ms, flags.connect_timeout_ms);
  take("--upstream-idle-timeout-ms", file.upstream_idle_timeout_ms, flags.upstream_idle_timeout_ms);
  take("--request-timeout-ms", file.request_timeout_ms, flags.request_timeout_ms);
  take("--shutdown-grace-ms", file.shutdown_grace_ms, flags.shutdown_grace_ms);
  take("--stale-while-revalidate", file.stale_while_revalidate,
       flags.stale_while_revalidate_seconds);
  take("--stale-if-error", file.stale_if_error, flags.stale_if_error_seconds);
  if (global.cache_url.empty() && file.cache_url) global.cache_url = *file.cache_url;
}

}  // namespace llm_caching::cli
