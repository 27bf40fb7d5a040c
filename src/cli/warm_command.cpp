// llm-caching warm FILE.jsonl: sends a batch of native requests (one a line, any provider)
// through the cache, at most --concurrency at once, with progress and the running cost. What is
// cached already is not sent again, so a second run after a crash calls only the rest.
#include "cli/commands.hpp"

#include "agent/runtime_impl.hpp"
#include "cli/progress.hpp"
#include "exchange/exchange.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/costs.hpp"
#include "llm_caching/errors.hpp"
#include "providers/http_model.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <fstream>
#include <iostream>
#include <map>
#include <memory>

namespace llm_caching::cli {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

struct WarmLine {
  std::size_t number = 0;  ///< 1-based line of the file
  std::string host;        ///< the provider prefix ("openai", "groq", ...)
  NativeRequest native;
};

[[noreturn]] void bad_line(const std::string& file, std::size_t number, std::string_view why) {
  throw ConfigurationError(fmt::format(
      "{}:{}: {}; each line is {{\"provider\": \"openai\", \"request\": {{...the native "
      "body...}}}}, with \"model\" too when the body has none (gemini)",
      file, number, why));
}

/// One line: {"provider", "request", "model"?}. The body is parsed exactly as the gateway parses
/// it (parse_json_exact), so a warmed entry has the key a client's request will have.
WarmLine parse_line(const std::string& file, std::size_t number, std::string_view text) {
  json::error_code ec;
  const json::value line = parse_json_exact(text, ec);
  if (ec) bad_line(file, number, "not valid JSON (" + ec.message() + ")");
  if (!line.is_object()) bad_line(file, number, "not a JSON object");
  const json::object& o = line.get_object();
  for (const auto& member : o) {
    if (member.key() != "provider" && member.key() != "request" && member.key() != "model") {
      bad_line(file, number, fmt::format("unknown field \"{}\"", std::string_view(member.key())));
    }
  }
  const auto* provider = o.if_contains("provider");
  const auto* request = o.if_contains("request");
  if (provider == nullptr || !provider->is_string()) bad_line(file, number, "no \"provider\"");
  if (request == nullptr || !request->is_object()) bad_line(file, number, "no \"request\" object");
  WarmLine out;
  out.number = number;
  out.host = std::string(provider->get_string());
  const providers::ProviderHost* host = providers::find_host(out.host);
  if (host == nullptr) bad_line(file, number, "unknown provider \"" + out.host + "\"");
  out.native.provider = host->wire;
  out.native.body = request->get_object();
  const json::value* model = o.if_contains("model");
  if (model == nullptr) model = request->get_object().if_contains("model");
  if (model == nullptr || !model->is_string() || model->get_string().empty()) {
    bad_line(file, number, "no model: add \"model\" (the request has no \"model\" string)");
  }
  out.native.model = std::string(model->get_string());
  return out;
}

std::vector<WarmLine> read_lines(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigurationError("cannot read '" + file + "'");
  std::vector<WarmLine> lines;
  std::string text;
  for (std::size_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    lines.push_back(parse_line(file, number, text));
  }
  return lines;
}

struct WarmArgs {
  std::string file;
  std::size_t concurrency = 4;
  std::string ns;
  std::int64_t ttl_seconds = 15 * 24 * 3600;
  std::string task = "warm";
};

struct Tally {
  std::size_t next = 0;
  std::uint64_t done = 0, cached = 0, called = 0, failed = 0;
  std::int64_t cost_nano_usd = 0;
};

/// One of the --concurrency workers: takes the next line until none is left. All the workers
/// run on one thread (the io_context's), so the tally needs no lock.
asio::awaitable<void> worker(exchange::Exchange& exchange, const std::vector<WarmLine>& lines,
                             std::map<std::string, std::shared_ptr<providers::HttpModel>>& models,
                             const WarmArgs& args, Tally& tally, Progress& progress) {
  while (tally.next < lines.size()) {
    const WarmLine& line = lines[tally.next++];
    providers::HttpModel& model = *models.at(line.host);
    exchange::ExchangeRequest request;
    request.native = line.native;
    request.namespace_ = args.ns;
    request.task = args.task;
    // As the library keys this endpoint (empty for the provider's public service).
    request.scope = providers::key_scope(model.endpoint());
    request.ttl = std::chrono::seconds(args.ttl_seconds);
    request.allow_unpriced = true;  // a warm-up of an unpriced model still caches its answers
    try {
      const exchange::ExchangeResult result = co_await exchange.run(model, std::move(request));
      ++(result.cache_hit || result.coalesced ? tally.cached : tally.called);
      tally.cost_nano_usd += result.cost_nano_usd;
    } catch (const std::exception& e) {
      ++tally.failed;
      spdlog::warn("{}:{}: {}", args.file, line.number, e.what());
    }
    ++tally.done;
    progress.update(tally.done,
                    fmt::format("cost ${:.4f}", nano_usd_to_dollars(tally.cost_nano_usd)));
  }
}

void run_warm(const WarmArgs& args, const GlobalOptions& global) {
  if (args.concurrency == 0) throw ConfigurationError("--concurrency must be at least 1");
  const std::vector<WarmLine> lines = read_lines(args.file);
  // One model per provider, made before any I/O: a missing key fails now, naming its variable.
  Runtime::Impl& runtime = Runtime::default_runtime().impl();
  std::map<std::string, std::shared_ptr<providers::HttpModel>> models;
  for (const WarmLine& line : lines) {
    if (!models.contains(line.host)) {
      models[line.host] =
          providers::make_http_model(runtime.pool, *providers::find_host(line.host), "", "");
    }
  }
  CacheOptions cache_options;
  cache_options.url = global.cache_url;
  exchange::Exchange& exchange = *runtime.exchange_for(cache_options);
  Tally tally;
  Progress progress(lines.size(), ProgressOptions{.what = "requests"});
  asio::io_context io;
  for (std::size_t i = 0; i < std::min(args.concurrency, lines.size()); ++i) {
    asio::co_spawn(io, worker(exchange, lines, models, args, tally, progress), asio::detached);
  }
  io.run();
  const std::string cost = fmt::format("cost ${:.4f}", nano_usd_to_dollars(tally.cost_nano_usd));
  progress.finish(tally.done, cost);
  fmt::print("warmed {} requests: {} already cached, {} called, {} failed, {}\n", tally.done,
             tally.cached, tally.called, tally.failed, cost);
  if (tally.failed > 0) {
    throw Error(
        fmt::format("{} requests failed (see the warnings above); run again to retry "
                    "them: what is cached is not sent again",
                    tally.failed));
  }
}

}  // namespace

void add_warm_command(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<WarmArgs>();
  CLI::App* warm = app.add_subcommand(
      "warm", "Send a batch of requests (JSON lines) through the cache, calling only the misses");
  warm->add_option("FILE", args->file,
                   "JSON lines: {\"provider\": \"openai\", \"request\": {...}, \"model\"?: ...}")
      ->required();
  warm->add_option("--concurrency", args->concurrency, "Requests in flight at once (default 4)");
  warm->add_option("--namespace", args->ns, "Namespace part of the storage keys");
  warm->add_option("--ttl", args->ttl_seconds, "Entry lifetime in seconds (default 15 days)");
  warm->add_option("--task", args->task, "Task name the recorded entries carry")
      ->capture_default_str();
  warm->footer(
      "Keys and base URLs come from the usual variables (OPENAI_API_KEY, OPENAI_BASE_URL, ...). "
      "Progress (count, rate, ETA, running cost) goes to standard error. A second run sends only "
      "what is not cached yet.\n"
      "Example:\n"
      "  echo '{\"provider\":\"openai\",\"request\":{\"model\":\"gpt-4o-mini\",\"messages\":"
      "[{\"role\":\"user\",\"content\":\"Hi\"}]}}' > batch.jsonl\n"
      "  llm-caching --cache-url dir://tests/llm-cache warm batch.jsonl --concurrency 8");
  warm->callback([args, &global] { run_warm(*args, global); });
}

}  // namespace llm_caching::cli
