// "Why did this replay miss?" (docs/TESTING.md): the field-by-field differences between a
// recorded canonical request (an entry's, core/entry.hpp format 3) and the request that missed,
// and the nearest of several recorded requests. Pure functions: the cache layer fetches the
// candidates (a bounded walk, TieredCache::recorded_neighbours), the exchange words the error.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::core {

struct DiffOptions {
  std::size_t max_lines = 8;       ///< lines kept; a last line counts the rest
  std::size_t excerpt_bytes = 60;  ///< of each value shown (cut on a UTF-8 boundary)
};

struct RequestDiff {
  /// Every differing field, also those past max_lines. A field is a leaf whose value changed, or
  /// a member or array element added or removed (counted once, whatever it holds).
  std::size_t changes = 0;
  /// How much differs, in bytes: a changed string counts what lies between its common head and
  /// tail, any other change the canonical size of the values. Ties between equal `changes`.
  std::size_t weight = 0;
  /// One a field, from recorded to live: `model: "gpt-4o" → "gpt-4o-mini"`,
  /// `messages[2].content: "…about cats" → "…about dogs"`, `temperature: added 0.2`,
  /// `top_p: removed 1`; then `… 3 more fields differ` when there are more than max_lines.
  std::vector<std::string> lines;
};

/// The differences from `recorded` to `live`, two JSON texts (canonical requests). `model` of
/// each, when given, is compared as the body's "model" member where the body has none (Gemini's
/// model is in the URL). A text that is not JSON is compared as one string.
RequestDiff diff_requests(std::string_view recorded, std::string_view live,
                          std::string_view recorded_model = {}, std::string_view live_model = {},
                          const DiffOptions& options = {});

struct RecordedRequest {
  std::string_view model;
  std::string_view request;  ///< canonical JSON
};
struct NearestRequest {
  std::size_t index = 0;  ///< into the candidates
  RequestDiff diff;       ///< from the candidate to the live request
};
/// The candidate closest to the live request: one of the same model before any other, then the
/// fewest differing fields, then the lightest diff (RequestDiff::weight), then the first. nullopt
/// when there is no candidate.
std::optional<NearestRequest> nearest_request(std::string_view live_model,
                                              std::string_view live_request,
                                              const std::vector<RecordedRequest>& candidates,
                                              const DiffOptions& options = {});

}  // namespace llm_caching::core
