// The pieces every cache URL form is parsed with: percent-decoding, query parameters, whole
// numbers, and the ConfigurationError that quotes the URL with its password masked. Pure
// (tests/unit/test_cache_url_params.cpp).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

namespace llm_caching::cache::url {

/// Query parameters by name.
using Params = std::map<std::string, std::string>;

/// Throws ConfigurationError "invalid cache URL '<url, password masked>': <problem>".
[[noreturn]] void fail(std::string_view problem, std::string_view url);

/// %XX escapes decoded; a malformed escape or %00 is an error (fail).
std::string percent_decode(std::string_view text, std::string_view url);

/// name=value pairs separated by '&', values percent-decoded; a repeated or value-less
/// parameter is an error (fail). Empty items ("a=1&&b=2") are skipped.
Params parse_query(std::string_view query, std::string_view url);

/// Fails naming every parameter not in `known`, and the accepted ones.
void reject_unknown_params(const Params& params, std::initializer_list<std::string_view> known,
                           std::string_view url);

/// 1 to 19 ASCII digits -> the number; else ConfigurationError "<what>: '<digits>' is not a
/// non-negative whole number".
std::uint64_t parse_unsigned(std::string_view digits, std::string_view what);

}  // namespace llm_caching::cache::url
