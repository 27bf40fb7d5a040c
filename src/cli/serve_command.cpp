// llm-caching serve: the caching gateway (docs/GATEWAY.md). Its options: serve_flags.cpp.
#include "cli/serve_flags.hpp"

#include "cache/cache_url.hpp"
#include "cache/tiered_cache.hpp"
#include "exchange/exchange.hpp"
#include "gateway/gateway.hpp"
#include "gateway/serve_config.hpp"
#include "gateway/server.hpp"
#include "llm_caching/cache_options.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"
#include "providers/http_model.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <array>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>

namespace llm_caching::cli {

namespace {

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

/// Where each provider's upstream URL came from, to name it in an error: the last of the
/// environment, the config file and --upstream that set it.
std::array<std::string, 3> upstream_sources(const ServeFlags& flags,
                                            const std::optional<gateway::ServeFileSettings>& file) {
  std::array<std::string, 3> sources = {"OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GEMINI_BASE_URL"};
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (file && file->upstreams[i] && file->upstreams[i]->base_url) {
      sources[i] = "config file " + flags.config_file + ": upstreams." +
                   std::string(to_string(static_cast<Provider>(i))) + ".base_url";
    }
  }
  for (const std::string& assignment : flags.upstreams) {
    const std::string name = assignment.substr(0, assignment.find('='));
    sources[static_cast<std::size_t>(parse_provider(name))] = "--upstream " + name;
  }
  return sources;
}

/// Every upstream is checked before the gateway starts: a URL without its scheme would
/// otherwise turn every request into a 400, with nothing said at start.
void check_upstreams(const gateway::Upstreams& upstreams, const std::array<std::string, 3>& from) {
  for (std::size_t i = 0; i < from.size(); ++i) {
    const gateway::Upstream& upstream = upstreams[static_cast<Provider>(i)];
    if (const std::string problem = gateway::upstream_url_problem(upstream.base_url);
        !problem.empty()) {
      throw ConfigurationError(from[i] + ": " + problem);
    }
  }
  const gateway::Upstream& openai = upstreams[Provider::openai];
  if (gateway::lacks_version_segment(openai.base_url)) {
    spdlog::warn(
        "gateway: the OpenAI upstream {} (from {}) has no version segment such as /v1: requests "
        "go to {}/chat/completions",
        openai.base_url, from[0], openai.base_url);
  }
}

gateway::GatewayConfig make_gateway_config(const ServeFlags& flags,
                                           const std::optional<gateway::ServeFileSettings>& file) {
  gateway::GatewayConfig config;
  // Precedence: flags, then the file, then $*_BASE_URL (read here, at start), then defaults.
  config.upstreams = gateway::Upstreams::from_environment();
  if (file) gateway::apply_upstream_settings(*file, config.upstreams);
  for (const auto& upstream : flags.upstreams) config.upstreams.set_base_url(upstream);
  for (const auto& key_env : flags.upstream_key_envs) config.upstreams.set_key_from_env(key_env);
  check_upstreams(config.upstreams, upstream_sources(flags, file));
  config.default_mode = parse_cache_mode(flags.mode);  // apply_environment set it
  config.share_across_keys = flags.share_across_keys;
  for (const std::string& spec : flags.budgets) config.budgets.push_back(Budget::parse(spec));
  for (const std::string& spec : flags.soft_budgets) {
    config.budgets.push_back(Budget::parse(spec));
    config.budgets.back().soft = true;
  }
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
  return config;
}

/// The price table: the built-in one with --prices merged over it (its entries win).
std::optional<CostTable> make_prices(const ServeFlags& flags) {
  if (flags.prices.empty()) return std::nullopt;
  const std::string what = flags.given("--prices") ? "--prices" : "config file field \"prices\":";
  CostTable table = CostTable::defaults();
  table.merge(gateway::load_price_file(flags.prices, what));
  return table;
}

gateway::ServerOptions make_server_options(const ServeFlags& flags) {
  auto [host, port] = gateway::parse_listen_address(flags.listen, "--listen");
  gateway::ServerOptions options;
  options.host = gateway::resolve_listen_host(host, "--listen");
  options.port = port;
  options.threads = flags.threads;
  options.body_limit = flags.body_limit;
  options.max_body_bytes_in_flight = flags.max_body_bytes_in_flight;
  options.max_header_fields = flags.max_header_fields;
  options.header_limit = flags.max_header_bytes;
  options.max_request_line = flags.max_request_line;
  options.header_timeout = std::chrono::milliseconds(flags.header_timeout_ms);
  options.upstream.max_response_bytes = flags.max_upstream_response_bytes;
  options.max_connections = flags.max_connections;
  options.request_timeout = std::chrono::milliseconds(flags.request_timeout_ms);
  options.shutdown_grace = std::chrono::milliseconds(flags.shutdown_grace_ms);
  options.upstream.read_timeout = std::chrono::milliseconds(flags.upstream_timeout_ms);
  options.upstream.connect_timeout = std::chrono::milliseconds(flags.connect_timeout_ms);
  // Per worker and upstream host. A burst of misses opens a connection per miss in flight;
  // those past the cap close as their answers come, the rest once idle for the timeout.
  options.upstream.max_idle_per_host = 64;
  options.upstream.idle_timeout = std::chrono::milliseconds(flags.upstream_idle_timeout_ms);
  // As the CLI's ask and the library: the flag, else LLM_CACHING_CA_FILE.
  options.upstream.ca_file = providers::resolve_ca_file(flags.ca_file);
  if (!options.upstream.ca_file.empty() && !std::ifstream(options.upstream.ca_file)) {
    throw ConfigurationError(
        "cannot read CA file '" + options.upstream.ca_file +
        "' (from --ca-file, the config file's ca_file or LLM_CACHING_CA_FILE)");
  }
  return options;
}

void log_start(const gateway::Gateway& core, const cache::TieredCache& cache,
               const ServeFlags& flags) {
  // Keys are never logged: only whether one is configured.
  auto describe_upstream = [&](Provider p) {
    const gateway::Upstream& u = core.config().upstreams[p];
    return u.base_url + (!u.api_key.empty()            ? " (configured key)"
                         : !u.fallback_api_key.empty() ? " (fallback key)"
                                                       : "");
  };
  spdlog::info(
      "gateway: cache {}{}, upstreams openai={} anthropic={} gemini={}, tenants {}, stale "
      "defaults: while-revalidate {} s, if-error {} s",
      cache.describe(), cache.signs_entries() ? " (signed entries)" : "",
      describe_upstream(Provider::openai), describe_upstream(Provider::anthropic),
      describe_upstream(Provider::gemini),
      flags.share_across_keys ? "share entries" : "partitioned by key",
      flags.stale_while_revalidate_seconds, flags.stale_if_error_seconds);
}

exchange::LedgerOptions ledger_options(const ServeFlags& flags,
                                       const RuntimeOptions& runtime_options) {
  exchange::LedgerOptions out;
  out.enabled = !flags.no_ledger;
  out.spill_dir =
      !flags.ledger_spill_dir.empty() ? flags.ledger_spill_dir : runtime_options.ledger_spill_dir;
  if (out.spill_dir.empty()) {
    try {
      out.spill_dir = cache::default_cache_file().parent_path() / "ledger-spill";
    } catch (const ConfigurationError&) {
      spdlog::warn("ledger: no spill dir (HOME unset): records are lost while the cache is down");
    }
  }
  return out;
}

void run_serve(GlobalOptions global, ServeFlags flags) {
  // The environment, read here, once, as the library's runtime reads it.
  const RuntimeOptions runtime_options = RuntimeOptions::from_environment();
  apply_environment(flags, runtime_options);
  std::optional<gateway::ServeFileSettings> file;
  if (!flags.config_file.empty()) {
    file = gateway::load_serve_config(flags.config_file);
    apply_file(*file, global, flags);
  }
  // stdout carries only the "listening on" line, for scripts; logs go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("llm-caching-serve"));
  spdlog::set_level(spdlog::level::from_str(flags.log_level));
  // Everything is checked before the cache is opened or a port bound.
  gateway::GatewayConfig config = make_gateway_config(flags, file);
  gateway::ServerOptions server_options = make_server_options(flags);
  // Declared before the exchange, which points to it, so that it outlives it.
  const std::optional<CostTable> prices = make_prices(flags);
  exchange::ExchangeOptions exchange_options;
  exchange_options.lock_ttl = runtime_options.lock_ttl;
  exchange_options.lock_wait = runtime_options.lock_wait;
  exchange_options.prices = prices ? &*prices : nullptr;

  CacheOptions cache_options;
  cache_options.url = global.cache_url;
  cache_options.l1_max_bytes = flags.l1_mib * kMiB;
  cache::CacheRegistry caches;
  auto cache = caches.open(cache_options);
  auto exchange =
      std::make_shared<exchange::Exchange>(cache, exchange::system_now_ms, exchange_options);
  exchange->start_ledger(ledger_options(flags, runtime_options));
  auto core = std::make_shared<gateway::Gateway>(std::move(config), exchange);
  warn_if_few_files(gateway::raise_open_file_limit(), flags.max_connections);

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
  const std::string& host = server_options.host;
  const bool v6 = host.find(':') != std::string::npos;
  std::cout << "listening on " << (v6 ? "[" + host + "]" : host) << ":" << bound << std::endl;
  log_start(*core, *cache, flags);
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
  add_serve_options(*serve, *flags);
  serve->footer(
      "Examples:\n"
      "  llm-caching serve\n"
      "  llm-caching serve --listen 0.0.0.0:8080 --upstream openai=http://127.0.0.1:11434/v1\n"
      "  llm-caching serve --config gateway.json --log-level debug\n"
      "  llm-caching serve --prices model_prices_and_context_window.json --ca-file corp-ca.pem\n"
      "  llm-caching serve --cache-url redis://127.0.0.1:6379/0 --stale-if-error 86400\n"
      "  OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python my_script.py");
  for (CLI::Option* option : serve->get_options()) {
    if (!option->get_lnames().empty()) flags->options["--" + option->get_lnames().front()] = option;
  }
  serve->callback([&global, flags] { run_serve(global, *flags); });
}

}  // namespace llm_caching::cli
