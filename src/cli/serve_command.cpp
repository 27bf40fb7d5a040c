// llm-caching serve: the caching gateway (docs/GATEWAY.md).
#include "cli/commands.hpp"

#include "agent/run.hpp"
#include "cache/tiered_cache.hpp"
#include "exchange/exchange.hpp"
#include "gateway/gateway.hpp"
#include "gateway/serve_config.hpp"
#include "gateway/server.hpp"
#include "llm_caching/cache_options.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <iostream>
#include <map>
#include <optional>

namespace llm_caching::cli {

namespace {

struct ServeFlags {
  std::string config_file;
  /// The options, to tell a flag given on the command line (it wins) from a default (the
  /// config file's value replaces it).
  std::map<std::string, CLI::Option*, std::less<>> options;
  bool given(std::string_view name) const {
    const auto found = options.find(name);
    return found != options.end() && found->second->count() > 0;
  }
  std::string listen = "127.0.0.1:8080";
  std::vector<std::string> upstreams;
  std::vector<std::string> upstream_key_envs;
  bool share_across_keys = false;
  bool reject_unpriced = false;
  bool require_key = false;
  unsigned threads = 0;
  std::uint64_t body_limit = 8 * kMiB;
  std::uint64_t max_body_bytes_in_flight = 128 * kMiB;
  std::uint64_t max_connections = 0;
  std::uint64_t max_header_fields = 100;
  std::int64_t max_wait_cap_ms = 120000;
  std::uint64_t l1_mib = 64;
  std::int64_t ttl_seconds = 15 * 24 * 3600;
  std::int64_t max_wait_ms = 10000;
  std::int64_t initial_wait_ms = 1000;
  std::int64_t upstream_timeout_ms = 600000;
  std::int64_t connect_timeout_ms = 10000;
  std::int64_t request_timeout_ms = 60000;
  std::int64_t shutdown_grace_ms = 30000;
  std::int64_t stale_while_revalidate_seconds = 0;
  std::int64_t stale_if_error_seconds = 0;
  std::string log_level = "info";
};

/// The stale windows whose flags were not given, from LLM_CACHE_STALE_WHILE_REVALIDATE and
/// LLM_CACHE_STALE_IF_ERROR, as the library reads them: one setting for a team's programs and
/// its gateway. The config file, applied after, wins over them.
void apply_environment(ServeFlags& flags) {
  const RuntimeOptions env = RuntimeOptions::from_environment();
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  if (!flags.given("--stale-while-revalidate")) {
    flags.stale_while_revalidate_seconds =
        duration_cast<seconds>(env.stale_while_revalidate).count();
  }
  if (!flags.given("--stale-if-error")) {
    flags.stale_if_error_seconds = duration_cast<seconds>(env.stale_if_error).count();
  }
}

/// Fills every setting whose flag was not given from the config file (flags win).
void apply_file(const gateway::ServeFileSettings& file, GlobalOptions& global, ServeFlags& flags) {
  auto take = [&](std::string_view flag, const auto& from, auto& to) {
    if (from && !flags.given(flag)) to = static_cast<std::remove_reference_t<decltype(to)>>(*from);
  };
  take("--listen", file.listen, flags.listen);
  take("--log-level", file.log_level, flags.log_level);
  take("--share-cache-across-keys", file.share_cache_across_keys, flags.share_across_keys);
  take("--reject-unpriced", file.reject_unpriced, flags.reject_unpriced);
  take("--require-key", file.require_key, flags.require_key);
  take("--max-wait-cap-ms", file.max_wait_cap_ms, flags.max_wait_cap_ms);
  take("--max-connections", file.max_connections, flags.max_connections);
  take("--max-body-bytes-in-flight", file.max_body_bytes_in_flight, flags.max_body_bytes_in_flight);
  take("--max-header-fields", file.max_header_fields, flags.max_header_fields);
  take("--threads", file.threads, flags.threads);
  take("--body-limit", file.body_limit, flags.body_limit);
  take("--l1-mb", file.l1_mb, flags.l1_mib);
  take("--ttl", file.ttl, flags.ttl_seconds);
  take("--max-wait-ms", file.max_wait_ms, flags.max_wait_ms);
  take("--initial-wait-ms", file.initial_wait_ms, flags.initial_wait_ms);
  take("--upstream-timeout-ms", file.upstream_timeout_ms, flags.upstream_timeout_ms);
  take("--connect-timeout-ms", file.connect_timeout_ms, flags.connect_timeout_ms);
  take("--request-timeout-ms", file.request_timeout_ms, flags.request_timeout_ms);
  take("--shutdown-grace-ms", file.shutdown_grace_ms, flags.shutdown_grace_ms);
  take("--stale-while-revalidate", file.stale_while_revalidate,
       flags.stale_while_revalidate_seconds);
  take("--stale-if-error", file.stale_if_error, flags.stale_if_error_seconds);
  if (global.cache_url.empty() && file.cache_url) global.cache_url = *file.cache_url;
}

/// Each connection takes a file descriptor (two with its upstream one): a low open-file limit
/// turns away clients with no word in the log.
void warn_if_few_files(std::uint64_t open_files, std::uint64_t max_connections) {
  constexpr std::uint64_t kComfortable = 4096;
  if (open_files == 0 || open_files >= kComfortable) return;
  const std::uint64_t connections =
      max_connections ? max_connections : gateway::default_max_connections();
  spdlog::warn(
      "gateway: the open-file limit is {} (the hard limit too), so at most {} client connections "
      "are served (--max-connections); raise it with `ulimit -n` or systemd's LimitNOFILE=",
      open_files, connections);
}

void run_serve(GlobalOptions global, ServeFlags flags) {
  apply_environment(flags);
  std::optional<gateway::ServeFileSettings> file;
  if (!flags.config_file.empty()) {
    file = gateway::load_serve_config(flags.config_file);
    apply_file(*file, global, flags);
  }
  // stdout carries only the "listening on" line, for scripts; logs go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("llm-caching-serve"));
  spdlog::set_level(spdlog::level::from_str(flags.log_level));
  auto [host, port] = gateway::parse_listen_address(flags.listen, "--listen");

  gateway::GatewayConfig config;
  // Precedence: flags, then the file, then $*_BASE_URL (read here, at start), then defaults.
  config.upstreams = gateway::Upstreams::from_environment();
  if (file) gateway::apply_upstream_settings(*file, config.upstreams);
  for (const auto& upstream : flags.upstreams) config.upstreams.set_base_url(upstream);
  for (const auto& key_env : flags.upstream_key_envs) config.upstreams.set_key_from_env(key_env);
  config.share_across_keys = flags.share_across_keys;
  config.allow_unpriced = !flags.reject_unpriced;
  config.default_ttl = std::chrono::seconds(flags.ttl_seconds);
  config.retry.max_wait = std::chrono::milliseconds(flags.max_wait_ms);
  config.retry.initial_wait = std::chrono::milliseconds(flags.initial_wait_ms);
  config.max_wait_cap = std::chrono::milliseconds(flags.max_wait_cap_ms);
  config.require_key = flags.require_key;
  config.memoize_hits = flags.l1_mib > 0;  // the memo's check is an L1 lookup
  config.stale_defaults.stale_while_revalidate =
      std::chrono::seconds(flags.stale_while_revalidate_seconds);
  config.stale_defaults.stale_if_error = std::chrono::seconds(flags.stale_if_error_seconds);

  CacheOptions cache_options;
  cache_options.url = global.cache_url;
  cache_options.l1_max_bytes = flags.l1_mib * kMiB;
  cache::CacheRegistry caches;
  auto cache = caches.open(cache_options);
  // The lock settings from the environment, read here, once, as the library's runtime does.
  const RuntimeOptions runtime_options = RuntimeOptions::from_environment();
  exchange::ExchangeOptions exchange_options;
  exchange_options.lock_ttl = runtime_options.lock_ttl;
  exchange_options.lock_wait = runtime_options.lock_wait;
  auto exchange =
      std::make_shared<exchange::Exchange>(cache, exchange::system_now_ms, exchange_options);
  auto core = std::make_shared<gateway::Gateway>(std::move(config), exchange);

  gateway::ServerOptions server_options;
  server_options.host = host;
  server_options.port = port;
  server_options.threads = flags.threads;
  server_options.body_limit = flags.body_limit;
  server_options.max_body_bytes_in_flight = flags.max_body_bytes_in_flight;
  server_options.max_header_fields = flags.max_header_fields;
  server_options.max_connections = flags.max_connections;
  warn_if_few_files(gateway::raise_open_file_limit(), flags.max_connections);
  server_options.request_timeout = std::chrono::milliseconds(flags.request_timeout_ms);
  server_options.shutdown_grace = std::chrono::milliseconds(flags.shutdown_grace_ms);
  server_options.upstream.read_timeout = std::chrono::milliseconds(flags.upstream_timeout_ms);
  server_options.upstream.connect_timeout = std::chrono::milliseconds(flags.connect_timeout_ms);
  server_options.upstream.max_idle_per_host = 256;

  // Signals first: a SIGTERM that arrives while starting must drain, not kill.
  boost::asio::io_context signal_io(1);
  boost::asio::signal_set signals(signal_io, SIGINT, SIGTERM);
  gateway::Server server(server_options, core);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    spdlog::info("gateway: shutting down; finishing requests in flight");
    server.shutdown();
  });
  const std::uint16_t bound = server.start();
  const bool v6 = host.find(':') != std::string::npos;
  std::cout << "listening on " << (v6 ? "[" + host + "]" : host) << ":" << bound << std::endl;
  // Keys are never logged: only whether one is configured.
  auto describe_upstream = [&](Provider p) {
    const gateway::Upstream& u = core->config().upstreams[p];
    return u.base_url + (!u.api_key.empty()            ? " (configured key)"
                         : !u.fallback_api_key.empty() ? " (fallback key)"
                                                       : "");
  };
  spdlog::info(
      "gateway: cache {}, upstreams openai={} anthropic={} gemini={}, tenants {}, stale "
      "defaults: while-revalidate {} s, if-error {} s",
      cache->describe(), describe_upstream(Provider::openai),
      describe_upstream(Provider::anthropic), describe_upstream(Provider::gemini),
      flags.share_across_keys ? "share entries" : "partitioned by key",
      flags.stale_while_revalidate_seconds, flags.stale_if_error_seconds);
  signal_io.run();
  server.wait();
}

}  // namespace

void add_serve_command(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* serve = app.add_subcommand(
      "serve", "Run the caching gateway: point an OpenAI, Anthropic or Gemini SDK at it");
  serve
      ->add_option("--config", flags->config_file,
                   "JSON file with these settings (fields: the flags' names with underscores, "
                   "and \"upstreams\"; see docs/GATEWAY.md). Flags given here win over it.")
      ->check(CLI::ExistingFile);
  serve->add_option("--listen", flags->listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  serve->add_option(
      "--upstream", flags->upstreams,
      "provider=URL, e.g. openai=http://127.0.0.1:11434/v1 (default: "
      "$OPENAI_BASE_URL, $ANTHROPIC_BASE_URL, $GEMINI_BASE_URL, else the public APIs)");
  serve->add_option("--upstream-key-env", flags->upstream_key_envs,
                    "provider=ENV_VAR: use this variable's key upstream instead of the caller's");
  serve->add_flag("--share-cache-across-keys", flags->share_across_keys,
                  "Let callers with different API keys share cache entries (default: partitioned)");
  serve->add_flag("--reject-unpriced", flags->reject_unpriced,
                  "Refuse models missing from the price table (default: serve them, costed $0)");
  serve
      ->add_option("--threads", flags->threads,
                   "Worker threads (0: one per core; docs/GATEWAY.md says when fewer help)")
      ->capture_default_str();
  serve
      ->add_option("--body-limit", flags->body_limit,
                   "Largest request body in bytes (else 413); raise it for large inline images")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--max-body-bytes-in-flight", flags->max_body_bytes_in_flight,
                   "Request-body bytes held at once, over all connections (else 503)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--max-connections", flags->max_connections,
                   "Open client connections (else 503); 0: from the open-file limit")
      ->capture_default_str();
  serve
      ->add_option("--max-header-fields", flags->max_header_fields,
                   "Header fields in one request (else 431)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10000}));
  serve->add_flag("--require-key", flags->require_key,
                  "Refuse callers that send no API key (401) instead of serving them from the "
                  "keyless partition");
  serve
      ->add_option("--max-wait-cap-ms", flags->max_wait_cap_ms,
                   "The most a caller may ask for with x-llm-max-wait-ms (larger values are cut)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{3600000}));
  serve->add_option("--l1-mb", flags->l1_mib, "In-memory L1 size in MiB (0 disables it)")
      ->capture_default_str();
  serve->add_option("--ttl", flags->ttl_seconds, "Default entry lifetime in seconds")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{10} * 366 * 24 * 3600));
  serve
      ->add_option("--max-wait-ms", flags->max_wait_ms,
                   "Retry budget for upstream 429/5xx (per request: x-llm-max-wait-ms)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--initial-wait-ms", flags->initial_wait_ms, "First backoff wait")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--upstream-timeout-ms", flags->upstream_timeout_ms,
                   "Longest upstream silence before 504")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--connect-timeout-ms", flags->connect_timeout_ms, "Upstream connect timeout")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--request-timeout-ms", flags->request_timeout_ms,
                   "Longest wait for a complete request on a connection (keep-alive idle too)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--shutdown-grace-ms", flags->shutdown_grace_ms,
                   "On SIGINT/SIGTERM, how long requests in flight may take to finish")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  const auto stale_range = CLI::Range(std::int64_t{0}, gateway::kMaxStaleSeconds);
  serve
      ->add_option("--stale-while-revalidate", flags->stale_while_revalidate_seconds,
                   "SECONDS: answer from an entry expired by at most this long at once, while one "
                   "background call refreshes it (0: off; per request: Cache-Control "
                   "stale-while-revalidate=N, x-llm-cache: no-stale)")
      ->capture_default_str()
      ->check(stale_range);
  serve
      ->add_option("--stale-if-error", flags->stale_if_error_seconds,
                   "SECONDS: answer from an entry expired by at most this long when the upstream "
                   "fails (429 past the retry budget, 5xx, unreachable; 0: off; per request: "
                   "Cache-Control stale-if-error=N). Entries are kept for their TTL plus the "
                   "larger window. Unset: $LLM_CACHE_STALE_IF_ERROR, as for the library "
                   "($LLM_CACHE_STALE_WHILE_REVALIDATE likewise)")
      ->capture_default_str()
      ->check(stale_range);
  serve->add_option("--log-level", flags->log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  serve->footer(
      "Examples:\n"
      "  llm-caching serve\n"
      "  llm-caching serve --listen 0.0.0.0:8080 --upstream openai=http://127.0.0.1:11434/v1\n"
      "  llm-caching serve --config gateway.json --log-level debug\n"
      "  llm-caching serve --cache-url redis://127.0.0.1:6379/0 --stale-if-error 86400\n"
      "  OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python my_script.py");
  for (CLI::Option* option : serve->get_options()) {
    if (!option->get_lnames().empty()) flags->options["--" + option->get_lnames().front()] = option;
  }
  serve->callback([&global, flags] { run_serve(global, *flags); });
}

}  // namespace llm_caching::cli
