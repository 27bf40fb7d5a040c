// llm-caching cache export SRC DST | cache unused --since-log FILE, and prune --unused: the
// commands that walk a whole cache (Backend::list_keys), for test suites that commit a dir://
// cache (docs/TESTING.md).
#include "cli/commands.hpp"

#include "cache/cache_url.hpp"
#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"
#include "cache/usage_log.hpp"
#include "cli/progress.hpp"
#include "core/entry.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <iostream>
#include <unordered_set>

namespace llm_caching::cli {
namespace {

namespace asio = boost::asio;

constexpr std::size_t kPage = 1000;
/// Entries a destination gets per put_many (one SQLite transaction).
constexpr std::size_t kBatch = 256;

struct Opened {
  std::shared_ptr<cache::Backend> backend;
  std::string identity;
};

/// A backend for a URL ("" = the embedded default file), without an L1: these commands read
/// each entry once.
Opened open_url(const std::string& url) {
  cache::BackendConfig config = cache::parse_cache_url(url);
  cache::apply_environment(config);
  return {cache::open_backend(config), cache::backend_identity(config)};
}

/// The storage-key prefix of a namespace; of every entry for "".
std::string prefix_of(const std::string& ns) {
  if (ns.empty()) return "llm-caching:v1:";
  std::string prefix = storage_key(ns, std::string(64, '0'));  // validates the namespace
  prefix.resize(prefix.size() - 64);
  return prefix;
}

asio::awaitable<std::vector<std::string>> all_keys(cache::Backend& backend, std::string prefix) {
  std::vector<std::string> keys;
  std::string cursor;
  do {
    cache::Backend::KeyPage page = co_await backend.list_keys(prefix, cursor, kPage);
    keys.insert(keys.end(), std::make_move_iterator(page.keys.begin()),
                std::make_move_iterator(page.keys.end()));
    cursor = std::move(page.cursor);
  } while (!cursor.empty());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());  // SCAN may repeat a key
  co_return keys;
}

struct ExportCounts {
  std::uint64_t exported = 0;
  std::uint64_t expired = 0;
  std::uint64_t unreadable = 0;
};

/// The TTL an entry keeps in its new home: what is left of its own; nullopt once expired.
std::optional<std::chrono::milliseconds> remaining_ttl(const core::CacheEntry& entry,
                                                       std::int64_t now_ms) {
  if (entry.ttl_ms <= 0) return std::chrono::milliseconds(0);
  const std::int64_t left = entry.created_at_ms + entry.ttl_ms - now_ms;
  if (left <= 0) return std::nullopt;
  return std::chrono::milliseconds(left);
}

asio::awaitable<ExportCounts> copy_entries(cache::Backend& src, cache::Backend& dst,
                                           std::vector<std::string> keys) {
  ExportCounts counts;
  Progress progress(keys.size());
  std::vector<cache::Backend::PutItem> batch;
  const std::int64_t now = cache::system_now_ms();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::optional<std::string> bytes;
    try {
      bytes = co_await src.get(keys[i]);
    } catch (const CacheError& e) {
      ++counts.unreadable;
      spdlog::warn("skipped {}: {}", keys[i], e.what());
    }
    if (bytes) {
      const auto decoded = core::decode_entry(*bytes);
      if (const auto* error = std::get_if<core::DecodeError>(&decoded)) {
        ++counts.unreadable;
        spdlog::warn("skipped {}: the stored entry is unreadable ({})", keys[i],
                     core::to_string(*error));
      } else if (const auto ttl = remaining_ttl(std::get<core::CacheEntry>(decoded), now)) {
        batch.push_back(cache::Backend::PutItem{keys[i], std::move(*bytes), *ttl});
      } else {
        ++counts.expired;
      }
    }
    if (batch.size() >= kBatch || (i + 1 == keys.size() && !batch.empty())) {
      counts.exported += batch.size();
      co_await dst.put_many(std::move(batch));
      batch.clear();
    }
    progress.update(i + 1);
  }
  progress.finish(keys.size());
  co_return counts;
}

void run_export(const std::string& src_url, const std::string& dst_url, const std::string& ns) {
  const Opened src = open_url(src_url);
  const Opened dst = open_url(dst_url);
  if (src.identity == dst.identity) {
    throw ConfigurationError(fmt::format("{} and {} are the same cache; export copies between two",
                                         src.backend->describe(), dst.backend->describe()));
  }
  const ExportCounts counts = cache::run_blocking([&]() -> asio::awaitable<ExportCounts> {
    std::vector<std::string> keys = co_await all_keys(*src.backend, prefix_of(ns));
    co_return co_await copy_entries(*src.backend, *dst.backend, std::move(keys));
  }());
  fmt::print("exported {} entries from {} to {} (skipped: {} expired, {} unreadable)\n",
             counts.exported, src.backend->describe(), dst.backend->describe(), counts.expired,
             counts.unreadable);
  if (counts.unreadable > 0) {
    throw CacheError(
        fmt::format("{} entries could not be read (see the warnings above)", counts.unreadable));
  }
}

/// The keys of the cache that no log lists, sorted.
std::vector<std::string> unused_keys(cache::Backend& backend, const std::vector<std::string>& logs,
                                     const std::string& ns) {
  if (logs.empty()) throw ConfigurationError("name the run's usage log: --since-log FILE");
  std::unordered_set<std::string> used;
  for (const auto& log : logs) used.merge(cache::UsageLog::read(log));
  if (used.empty()) {
    // An empty log would make every entry "unused": far more likely a run without the log.
    throw ConfigurationError(fmt::format(
        "the usage log{} {} list{} no entry; run the suite with LLM_CACHE_USAGE_LOG=FILE set "
        "first (an empty log would mark every entry unused)",
        logs.size() > 1 ? "s" : "", fmt::join(logs, ", "), logs.size() > 1 ? "" : "s"));
  }
  std::vector<std::string> keys = cache::run_blocking(all_keys(backend, prefix_of(ns)));
  std::erase_if(keys, [&](const std::string& key) { return used.contains(key); });
  return keys;
}

}  // namespace

void add_export_command(CLI::App& cache_cmd) {
  struct Args {
    std::string src, dst, ns;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = cache_cmd.add_subcommand(
      "export", "Copy every entry (or one namespace's) from one cache to another");
  cmd->add_option("SRC_URL", args->src, "Cache to read, e.g. sqlite:///home/me/.cache/x.db")
      ->required();
  cmd->add_option("DST_URL", args->dst, "Cache to write, e.g. dir://tests/llm-cache")->required();
  cmd->add_option("--namespace", args->ns, "Only this namespace");
  cmd->footer(
      "Entries keep what is left of their TTL (a dir:// cache keeps none: its entries never "
      "expire); expired entries are skipped. Progress (count, rate, ETA) goes to standard "
      "error: a bar on a terminal, a line every 5 s otherwise.\n"
      "Examples:\n"
      "  llm-caching cache export sqlite://$HOME/.cache/llm-caching/cache.db dir://tests/llm-cache"
      " --namespace tests\n"
      "  llm-caching cache export dir://tests/llm-cache redis://cache.internal:6379/0");
  cmd->callback([args] { run_export(args->src, args->dst, args->ns); });
}

void add_unused_command(CLI::App& cache_cmd, GlobalOptions& global) {
  struct Args {
    std::vector<std::string> logs;
    std::string ns;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = cache_cmd.add_subcommand(
      "unused", "List the entries a run never read (its LLM_CACHE_USAGE_LOG file)");
  cmd->add_option("--since-log", args->logs,
                  "Usage log a run wrote (LLM_CACHE_USAGE_LOG=FILE); repeat to merge several")
      ->required();
  cmd->add_option("--namespace", args->ns, "Only this namespace");
  cmd->footer(
      "Example:\n"
      "  LLM_CACHE_USAGE_LOG=/tmp/used.log ctest\n"
      "  llm-caching --cache-url dir://tests/llm-cache cache unused --since-log /tmp/used.log");
  cmd->callback([args, &global] {
    const Opened opened = open_url(cache::resolve_cache_url(CacheOptions{.url = global.cache_url}));
    const auto keys = unused_keys(*opened.backend, args->logs, args->ns);
    if (global.json) {
      boost::json::array out;
      for (const auto& key : keys) out.emplace_back(key);
      std::cout << boost::json::serialize(out) << '\n';
    } else {
      for (const auto& key : keys) std::cout << key << '\n';
    }
  });
}

void prune_unused(const GlobalOptions& global, const std::vector<std::string>& logs,
                  const std::string& ns) {
  const Opened opened = open_url(cache::resolve_cache_url(CacheOptions{.url = global.cache_url}));
  std::uint64_t removed = 0;
  for (const auto& key : unused_keys(*opened.backend, logs, ns)) {
    removed += cache::run_blocking(opened.backend->erase(key)) ? 1 : 0;
  }
  std::cout << "removed " << removed << " unused entries\n";
}

}  // namespace llm_caching::cli
