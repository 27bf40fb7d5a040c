// llm-caching cache stats | get | rm | clear | prune | key (export and unused: cache_move_commands)
#include "cache/run_blocking.hpp"
#include "cli/commands.hpp"
#include "core/ledger.hpp"

#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "core/printable.hpp"
#include "core/text.hpp"
#include "exchange/embeddings.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/cache_options.hpp"
#include "llm_caching/costs.hpp"
#include "llm_caching/errors.hpp"
#include "providers/embeddings_wire.hpp"
#include "providers/endpoint.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

namespace llm_caching::cli {

namespace {

namespace json = boost::json;

constexpr std::string_view kKeyPrefix = "llm-caching:v1:";

std::shared_ptr<cache::TieredCache> open_cache(const GlobalOptions& global) {
  CacheOptions options;
  options.url = global.cache_url;
  options.strict = true;  // at a terminal, a failing backend is an error, not a silent miss
  // One command, one cache: the registry is only for the lifetime of this open.
  cache::CacheRegistry registry;
  return registry.open(options);
}

std::string read_input(const std::string& path) {
  if (path == "-") {
    return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigurationError("cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// A full storage key, or a bare 64-hex digest completed with --namespace.
std::string resolve_key(const std::string& key, const std::string& ns) {
  if (key.starts_with(kKeyPrefix)) return key;
  if (key.size() == 64 && key.find_first_not_of("0123456789abcdef") == std::string::npos) {
    return storage_key(ns, key);
  }
  throw ConfigurationError("'" + key +
                           "' is neither a storage key (llm-caching:v1:<namespace>:<hex>) nor a "
                           "64-character lowercase hex digest");
}

std::string format_time_ms(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json::object entry_to_json(const std::string& key, const core::CacheEntry& e) {
  json::object out;
  out["key"] = key;
  out["provider"] = e.provider;
  out["model"] = e.model;
  // The task that recorded it (entry format 4); null in entries that name none.
  out["task"] = e.task.empty() ? json::value(nullptr) : json::value(e.task);
  // null: no time recorded (a dir:// cache keeps none, so that its files stay byte-stable).
  out["created_at"] =
      e.created_at_ms > 0 ? json::value(format_time_ms(e.created_at_ms)) : json::value(nullptr);
  out["expires_at"] =
      e.ttl_ms > 0 ? json::value(format_time_ms(e.created_at_ms + e.ttl_ms)) : json::value(nullptr);
  out["usage"] = {{"input_tokens", e.usage.input_tokens},
                  {"output_tokens", e.usage.output_tokens},
                  {"cache_write_tokens", e.usage.cache_write_tokens},
                  {"cache_read_tokens", e.usage.cache_read_tokens}};
  out["cost_usd"] = core::dollars_text(e.cost_nano_usd);
  out["cost_nano_usd"] = e.cost_nano_usd;
  out["streamed"] = !e.stream.empty();
  boost::system::error_code ec;
  // not keyed: a stored answer, parsed only to print it as JSON (falls back to the raw text).
  json::value response = json::parse(e.response, ec);
  out["response"] = ec ? json::value(e.response) : std::move(response);
  return out;
}

void print_stats(const cache::TieredStats& s, const std::string& where, bool as_json) {
  if (as_json) {
    json::object o{{"backend", where},
                   {"entries", s.l2.entries},
                   {"bytes", s.l2.bytes},
                   {"l1_entries", s.l1_entries},
                   {"l1_bytes", s.l1_bytes},
                   {"hits", s.l2.hits},
                   {"misses", s.l2.misses},
                   {"writes", s.l2.writes},
                   {"evictions", s.l2.evictions},
                   {"expired", s.l2.expired},
                   {"corrupt", s.corrupt},
                   {"refused_unsigned", s.refused_unsigned},
                   {"refused_wrong_mac", s.refused_wrong_mac},
                   {"backend_errors", s.backend_errors}};
    std::cout << json::serialize(o) << '\n';
    return;
  }
  fmt::print("backend:   {}\n", where);
  fmt::print("entries:   {}\n", s.l2.entries);
  fmt::print("bytes:     {}\n", s.l2.bytes);
  fmt::print("evictions: {}\n", s.l2.evictions);
  fmt::print("expired:   {}\n", s.l2.expired);
}

/// The request whose key `cache key` prints, parsed exactly as the gateway parses it
/// (parse_json_exact: correctly rounded doubles, no repeated keys), so both print one key for one
/// body. tests/unit/test_keyed_parse_guard.cpp keeps other parsers out of this file's keyed paths.
json::value parse_keyed_request(std::string_view text, const std::string& file) {
  const std::string source = file == "-" ? "standard input" : "'" + file + "'";
  json::error_code ec;
  std::string duplicate;
  json::value request = parse_json_exact(text, ec, &duplicate);
  if (ec == JsonError::duplicate_key) {
    // The gateway refuses such a body (400), as parsers disagree on which value wins.
    throw ConfigurationError(fmt::format(
        "{} names the key \"{}\" twice in one object; send each key once (the gateway refuses "
        "such a request, so it has no cache key)",
        source, core::printable(duplicate, 64)));
  }
  if (ec) throw ConfigurationError(fmt::format("{} is not valid JSON: {}", source, ec.message()));
  return request;
}

/// "chat" | "responses" | "completions" | "count_tokens" | "moderations" | "embeddings".
Api parse_api(const std::string& name) {
  for (Api api : {Api::chat, Api::responses, Api::completions, Api::count_tokens, Api::moderations,
                  Api::embeddings}) {
    if (name == to_string(api)) return api;
  }
  throw ConfigurationError("--api '" + name +
                           "': expected chat, responses, completions, count_tokens, moderations "
                           "or embeddings");
}

/// An embeddings request's keys, one per input, in order: as the gateway's embeddings routes
/// key them (exchange::embeddings_keys). Gemini: an :embedContent body, or :batchEmbedContents'.
std::vector<std::string> embeddings_keys(Provider provider, std::string model,
                                         const json::value& request, const std::string& ns,
                                         const std::string& scope) {
  namespace emb = providers::embeddings;
  if (!request.is_object() || provider == Provider::anthropic) {
    throw ConfigurationError("embeddings: an OpenAI or Gemini request object is expected");
  }
  const emb::Wire wire = provider == Provider::openai               ? emb::Wire::openai
                         : request.as_object().contains("requests") ? emb::Wire::gemini_batch
                                                                    : emb::Wire::gemini_one;
  try {
    return exchange::embeddings_keys(emb::read_request(wire, std::move(model), request.as_object()),
                                     ns, scope);
  } catch (const emb::BadInput& e) {
    throw ConfigurationError(std::string("embeddings: ") + e.what());
  }
}

void add_key_command(CLI::App& cache_cmd) {
  struct KeyArgs {
    std::string provider, model, ns, scope, base_url, file, api = "chat";
    bool explain = false;
  };
  auto args = std::make_shared<KeyArgs>();
  CLI::App* key = cache_cmd.add_subcommand(
      "key", "Print the cache key of a native request (the answer to \"why did this miss?\")");
  key->add_option("--provider", args->provider, "openai | anthropic | gemini")->required();
  key->add_option("--model", args->model,
                  "Model id as sent (default: the request's \"model\"; required for gemini, "
                  "whose model is in the URL)");
  key->add_option("--namespace", args->ns, "Namespace part of the storage key");
  key->add_option("--scope", args->scope, "Tenant scope (the gateway's hash of the caller's key)");
  key->add_option("--base-url", args->base_url,
                  "Where misses go, when not the provider's public service (ask --base-url, "
                  "serve --upstream): it is part of the key");
  key->add_option("--api", args->api,
                  "chat (default) | responses | completions | count_tokens | moderations | "
                  "embeddings (one key per input, in order)");
  key->add_flag("--explain", args->explain,
                "Also print the canonical material and which fields were dropped");
  key->add_option("FILE", args->file, "Request JSON file, or - for standard input")->required();
  key->footer(
      "Example:\n  echo '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":"
      "\"Hi\"}],\"stream\":true}' | llm-caching cache key --provider openai --explain -\n"
      "  echo '{\"model\":\"text-embedding-3-small\",\"input\":[\"a\",\"b\"]}' | llm-caching cache "
      "key "
      "--provider openai --api embeddings -");
  key->callback([args] {
    const Provider provider = parse_provider(args->provider);
    const json::value request = parse_keyed_request(read_input(args->file), args->file);
    std::string model = args->model;
    if (model.empty() && request.is_object()) {
      if (const auto* m = request.as_object().if_contains("model"); m && m->is_string()) {
        model = std::string(m->get_string());
      }
    }
    const Api api = parse_api(args->api);
    if (model.empty() && api == Api::moderations) model = "omni-moderation-latest";  // as served
    if (model.empty()) {
      throw ConfigurationError("no model: pass --model (the request has no \"model\" string)");
    }
    std::string endpoint;  // the one scope rule of the library and the gateway (DESIGN §3)
    if (!args->base_url.empty()) {
      providers::ProviderEndpoint target;
      target.provider = provider;
      target.host = args->base_url;
      target.base_url = core::without_trailing_slashes(args->base_url);
      endpoint = providers::cache_scope(target);
    }
    const std::string scope =
        providers::key_scope(providers::ScopeParts{.tenant = args->scope, .endpoint = endpoint});
    if (api == Api::embeddings) {
      for (const std::string& k : embeddings_keys(provider, model, request, args->ns, scope))
        std::cout << k << '\n';
      return;
    }
    if (api != Api::chat && !request.is_object()) {
      throw ConfigurationError("the request is not a JSON object");
    }
    const KeyDerivation d = api == Api::chat
                                ? derive_key(provider, model, request, scope)
                                : derive_key(provider, api, model, request.as_object(), scope);
    std::cout << storage_key(args->ns, d.hex) << '\n';
    if (args->explain) {
      std::cout << "provider: " << to_string(provider) << "\nmodel:    " << model
                << "\nscope:    " << (scope.empty() ? "(shared)" : scope) << "\nsha256:   " << d.hex
                << "\ndropped:  ";
      if (d.dropped.empty()) std::cout << "(nothing)";
      for (std::size_t i = 0; i < d.dropped.size(); ++i) {
        std::cout << (i ? ", " : "") << d.dropped[i];
      }
      std::cout << "\ncanonical request:\n" << d.canonical_request << '\n';
    }
  });
}

/// cache get and cache rm: one entry, by key or digest.
void add_entry_commands(CLI::App& cache_cmd, GlobalOptions& global) {
  auto key_arg = std::make_shared<std::string>();
  auto ns_arg = std::make_shared<std::string>();
  CLI::App* get = cache_cmd.add_subcommand("get", "Print one entry as JSON");
  get->add_option("KEY", *key_arg, "Storage key, or its 64-hex digest")->required();
  get->add_option("--namespace", *ns_arg, "Namespace when KEY is a bare digest");
  get->footer("Example:\n  llm-caching cache get llm-caching:v1:default:3f2a...");
  get->callback([&global, key_arg, ns_arg] {
    const std::string key = resolve_key(*key_arg, *ns_arg);
    auto entry = cache::run_blocking(
        open_cache(global)->get(key, std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()));
    if (!entry) throw CacheMissError("no entry for " + key);
    std::cout << json::serialize(entry_to_json(key, *entry)) << '\n';
  });

  CLI::App* rm = cache_cmd.add_subcommand("rm", "Delete one entry");
  rm->add_option("KEY", *key_arg, "Storage key, or its 64-hex digest")->required();
  rm->add_option("--namespace", *ns_arg, "Namespace when KEY is a bare digest");
  rm->footer("Example:\n  llm-caching cache rm llm-caching:v1:default:3f2a...");
  rm->callback([&global, key_arg, ns_arg] {
    const std::string key = resolve_key(*key_arg, *ns_arg);
    const auto tiers = open_cache(global);
    if (!cache::run_blocking(tiers->erase(key))) throw CacheMissError("no entry for " + key);
    // Running gateways and programs drop their memory tier, which may still hold the entry.
    cache::run_blocking(tiers->announce_clear());
    std::cout << "removed " << key << '\n';
  });
}

/// cache prune: expired entries, or (--unused) the ones a run never read.
void add_prune_command(CLI::App& cache_cmd, GlobalOptions& global) {
  struct PruneArgs {
    bool unused = false;
    std::vector<std::string> logs;
    std::string ns;
  };
  auto prune_args = std::make_shared<PruneArgs>();
  CLI::App* prune = cache_cmd.add_subcommand(
      "prune", "Delete expired entries now, or (--unused) the entries a run never read");
  prune->add_flag("--unused", prune_args->unused,
                  "Delete the entries no --since-log file lists, instead of expired ones");
  prune->add_option("--since-log", prune_args->logs,
                    "Usage log a run wrote (LLM_CACHE_USAGE_LOG=FILE); repeat to merge several");
  prune->add_option("--namespace", prune_args->ns, "With --unused: only this namespace");
  prune->footer(
      "Examples:\n  llm-caching cache prune\n"
      "  llm-caching --cache-url dir://tests/llm-cache cache prune --unused --since-log used.log");
  prune->callback([&global, prune_args] {
    if (prune_args->unused) return prune_unused(global, prune_args->logs, prune_args->ns);
    if (!prune_args->logs.empty() || !prune_args->ns.empty()) {
      throw ConfigurationError("--since-log and --namespace go with --unused");
    }
    const auto removed = cache::run_blocking(
        open_cache(global)->prune(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count()));
    std::cout << "removed " << removed << " expired entries\n";
  });
}

}  // namespace

void add_cache_commands(CLI::App& app, GlobalOptions& global) {
  CLI::App* cache_cmd = app.add_subcommand("cache", "Inspect and maintain the cache");
  cache_cmd->require_subcommand(1);
  cache_cmd->footer(
      "Examples:\n"
      "  llm-caching cache stats\n"
      "  llm-caching --cache-url sqlite:///tmp/llm.db cache stats --json\n"
      "  llm-caching cache get llm-caching:v1:default:<hex>\n"
      "  llm-caching cache rm <hex> --namespace tests\n"
      "  llm-caching cache clear --namespace tests\n"
      "  llm-caching cache prune\n"
      "  llm-caching cache key --provider openai --explain request.json\n"
      "  llm-caching cache export sqlite:///tmp/llm.db dir://tests/llm-cache\n"
      "  llm-caching --cache-url dir://tests/llm-cache cache unused --since-log used.log");

  CLI::App* stats = cache_cmd->add_subcommand("stats", "Entries, bytes and counters of the cache");
  stats->footer("Example:\n  llm-caching cache stats --json");
  stats->callback([&global] {
    auto tiers = open_cache(global);
    print_stats(cache::run_blocking(tiers->stats()), tiers->describe(), global.json);
  });

  add_entry_commands(*cache_cmd, global);

  auto clear_ns = std::make_shared<std::string>();
  CLI::App* clear = cache_cmd->add_subcommand("clear", "Delete every entry (or one namespace's)");
  clear->add_option("--namespace", *clear_ns, "Only this namespace");
  clear->footer("Example:\n  llm-caching cache clear --namespace tests");
  clear->callback([&global, clear_ns] {
    std::string prefix(kKeyPrefix);
    if (!clear_ns->empty()) {
      // storage_key validates the namespace; the prefix is the key without its digest.
      prefix = storage_key(*clear_ns, std::string(64, '0'));
      prefix.resize(prefix.size() - 64);
    }
    const auto removed = cache::run_blocking(open_cache(global)->clear(prefix));
    std::cout << "removed " << removed << " entries\n";
  });

  add_prune_command(*cache_cmd, global);
  add_key_command(*cache_cmd);
  add_export_command(*cache_cmd);
  add_unused_command(*cache_cmd, global);
}

}  // namespace llm_caching::cli
