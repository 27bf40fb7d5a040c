// TieredCache::recorded_neighbours: the recorded entries of a namespace, read for the error of a
// replay miss ("why did this miss?", docs/TESTING.md). A bounded walk: at most
// NeighbourBounds::max_pages pages of Backend::list_keys and max_entries gets, whatever the store
// holds. dir:// lists the namespace's folder; SQLite pages its rows by rowid (oldest first);
// Redis SCANs with MATCH on the namespace's prefix.
#include "cache/tiered_cache.hpp"

#include "core/entry.hpp"
#include "core/entry_signature.hpp"
#include "llm_caching/errors.hpp"

#include <spdlog/spdlog.h>

namespace llm_caching::cache {

asio::awaitable<TieredCache::Neighbours> TieredCache::recorded_neighbours(std::string prefix,
                                                                          std::string except,
                                                                          NeighbourBounds bounds) {
  constexpr int kMaxFailures = 3;  // in a row
  Neighbours found;
  std::string cursor;
  int failures = 0;
  try {
    for (std::size_t page = 0; page < bounds.max_pages; ++page) {
      Backend::KeyPage keys = co_await l2_->list_keys(prefix, cursor, bounds.max_entries);
      for (std::string& key : keys.keys) {
        if (key == except) continue;
        if (found.read == bounds.max_entries) {
          found.bounded = true;
          co_return found;
        }
        ++found.read;
        std::optional<std::string> bytes;
        try {
          bytes = co_await l2_->get(key);
          failures = 0;
        } catch (const CacheError&) {
          // A file that does not parse is skipped; a store that keeps failing ends the walk.
          if (++failures == kMaxFailures) throw;
        }
        if (!bytes) continue;
        if (signing_.enabled() && !core::accepted(core::check_signature(*bytes, key, signing_))) {
          continue;  // never shown: no key of ours vouches for it
        }
        auto decoded = core::decode_entry(*bytes);
        auto* entry = std::get_if<core::CacheEntry>(&decoded);
        if (entry == nullptr || entry->request.empty()) continue;
        found.entries.emplace_back(std::move(key),
                                   std::make_shared<const core::CacheEntry>(std::move(*entry)));
      }
      cursor = std::move(keys.cursor);
      if (cursor.empty()) co_return found;
    }
    found.bounded = true;
  } catch (const std::exception& e) {
    // The explanation is a courtesy of the miss's error: a failing store ends it, quietly
    // beyond a debug line (the miss itself is what the caller learns about).
    spdlog::debug("listing {} for a replay miss's nearest entry failed: {}", describe(), e.what());
  }
  co_return found;
}

}  // namespace llm_caching::cache
