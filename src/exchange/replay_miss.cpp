// The explanation of a replay miss (replay_miss.hpp).
#include "exchange/replay_miss.hpp"

#include "core/entry.hpp"
#include "core/printable.hpp"
#include "core/request_diff.hpp"

#include <fmt/format.h>

namespace llm_caching::exchange {
namespace {

/// What the walk found, in words: the nearest entry and its diff, or why none is named.
std::string describe_nearest(const cache::TieredCache& cache, const ExchangeRequest& request,
                             const cache::TieredCache::Neighbours& found,
                             const std::string& live_request) {
  const NativeRequest& native = request.native;
  const std::string provider(to_string(native.provider));
  const std::string api(to_string(native.api));
  const std::string scope = core::request_scope_digest(request.scope);
  const std::string ns =
      core::printable(request.namespace_.empty() ? "default" : request.namespace_, 64);
  std::vector<core::RecordedRequest> candidates;
  std::vector<std::size_t> index;
  for (std::size_t i = 0; i < found.entries.size(); ++i) {
    const core::CacheEntry& e = *found.entries[i].second;
    if (e.provider != provider || e.api != api || e.scope_digest != scope) continue;
    candidates.push_back({e.model, e.request});
    index.push_back(i);
  }
  const std::string bound = found.bounded ? fmt::format(" (the first {} read)", found.read) : "";
  if (found.read == 0) return fmt::format("\n  namespace '{}' holds no other recorded entry", ns);
  if (candidates.empty()) {
    const std::size_t without = found.read - found.entries.size();
    return fmt::format(
        "\n  no nearest entry to name: of the {} entries read in namespace '{}'{}, {} keep no "
        "request (recorded before entry format 3, or unreadable: record them again to compare) "
        "and {} answer another provider, API or scope than {} {}",
        found.read, ns, bound, without, found.entries.size(), provider, api);
  }
  const auto nearest = core::nearest_request(native.model, live_request, candidates);
  const auto& [key, entry] = found.entries[index[nearest->index]];
  const std::string where = cache.backend()->entry_location(key);
  std::string out = fmt::format(
      "\n  nearest recorded entry: {}{} (model {}; nearest of {} {} {} "
      "entries of namespace '{}'{})",
      key, where.empty() ? "" : " in " + where, core::printable(entry->model, 80),
      candidates.size(), provider, api, ns, bound);
  if (nearest->diff.changes == 0) {
    return out +
           "\n    its request is the same once LLM_CACHE_REDACT's matches are scrubbed: "
           "the difference is in scrubbed text";
  }
  out += fmt::format("; {} field{} differ{} from it:", nearest->diff.changes,
                     nearest->diff.changes == 1 ? "" : "s", nearest->diff.changes == 1 ? "s" : "");
  for (const std::string& line : nearest->diff.lines) out += "\n    " + line;
  return out;
}

}  // namespace

boost::asio::awaitable<std::string> explain_replay_miss(
    cache::TieredCache& cache, const ExchangeRequest& request, std::string storage_key,
    cache::TieredCache::NeighbourBounds bounds) {
  const std::string unreadable = cache.unreadable_reason(storage_key);
  if (!unreadable.empty()) co_return "; " + unreadable;
  const NativeRequest& native = request.native;
  const std::string live = cache.stored_request(
      derive_key(native.provider, native.api, native.model, native.body, request.scope)
          .canonical_request);
  const std::size_t colon = storage_key.rfind(':');
  std::string prefix = storage_key.substr(0, colon + 1);  // the namespace's keys
  const cache::TieredCache::Neighbours found =
      co_await cache.recorded_neighbours(std::move(prefix), storage_key, bounds);
  co_return describe_nearest(cache, request, found, live);
}

}  // namespace llm_caching::exchange
