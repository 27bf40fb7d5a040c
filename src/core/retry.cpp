#include "core/retry.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <string_view>

namespace llm_caching::core {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMinWait{1};
// A Retry-After beyond a day is a misconfigured or hostile server, not advice to follow.
constexpr std::int64_t kMaxRetryAfterMs = 24LL * 60 * 60 * 1000;

// splitmix64: tiny, well-distributed and deterministic for a given seed.
std::uint64_t next_random(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

milliseconds capped_double(milliseconds value, milliseconds cap) noexcept {
  return value > cap / 2 ? cap : value * 2;
}

}  // namespace

RetryPolicy::RetryPolicy(RetryOptions opts, std::uint64_t seed)
    : opts_(opts),
      rng_state_(seed),
      backoff_(std::max(kMinWait, std::min(opts.initial_wait, opts.max_single_wait))) {}

// Full jitter as defined in the AWS Architecture Blog ("Exponential Backoff And Jitter"):
// sleep = random_between(0, min(cap, base * 2^attempt)), except that the draw starts at 1 ms: a
// retry that waits 0 would spend no budget, so a zero initial wait could retry forever.
// A provider hint replaces the computed wait (no jitter), also raised to at least 1 ms.
RetryDecision RetryPolicy::next(const RetryHint& hint) {
  if (given_up_) return {.give_up = true, .wait = milliseconds{0}};
  milliseconds wait;
  if (hint.retry_after) {
    last_retry_after_ = hint.retry_after;
    wait = std::max(kMinWait, *hint.retry_after);
  } else {
    const auto span = static_cast<std::uint64_t>(backoff_.count());  // >= 1 by construction
    // Modulo bias is below span / 2^64: irrelevant for waits of milliseconds.
    wait = milliseconds{1 + static_cast<std::int64_t>(next_random(rng_state_) % span)};
  }
  // Compared as "wait > budget left" so that waited_ + wait cannot overflow.
  if (opts_.max_wait < waited_ || wait > opts_.max_wait - waited_) {
    given_up_ = true;
    return {.give_up = true, .wait = milliseconds{0}};
  }
  waited_ += wait;
  ++attempts_;
  backoff_ = std::max(kMinWait, capped_double(backoff_, opts_.max_single_wait));
  return {.give_up = false, .wait = wait};
}

// ---- header value parsers ----
namespace {

std::string_view trim(std::string_view s) noexcept {
  const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// ceil(value * 10^scale) for a plain decimal "123" or "1.25"; nullopt if malformed or above cap.
std::optional<std::int64_t> parse_decimal_ceil(std::string_view s, int scale,
                                               std::int64_t cap) noexcept {
  std::size_t i = 0;
  std::int64_t value = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    value = value * 10 + (s[i] - '0');
    if (value > cap) return std::nullopt;  // also keeps the multiplication below in range
  }
  if (i == 0) return std::nullopt;
  const std::size_t fraction_start = i + 1;
  if (i < s.size() && (s[i] != '.' || fraction_start == s.size())) return std::nullopt;
  bool round_up = false;
  for (std::size_t j = fraction_start; j < s.size(); ++j) {
    if (!is_digit(s[j])) return std::nullopt;
    if (static_cast<int>(j - fraction_start) < scale) continue;
    round_up = round_up || s[j] != '0';
  }
  for (int k = 0; k < scale; ++k) {
    const std::size_t j = fraction_start + static_cast<std::size_t>(k);
    value = value * 10 + (j < s.size() ? s[j] - '0' : 0);
  }
  if (round_up) ++value;
  if (value > cap) return std::nullopt;
  return value;
}

// Days since 1970-01-01 of a proleptic Gregorian date, counting in 400-year eras of 146097 days
// with years starting in March so that the leap day is the last day of a year.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto year_of_era = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned day_of_year = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;  // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(day_of_era) - 719468;
}

unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

constexpr std::array<std::string_view, 7> kShortDays{"Mon", "Tue", "Wed", "Thu",
                                                     "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                    "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// A forward-only reader over a date string; every method fails softly.
struct DateCursor {
  std::string_view rest;

  bool literal(std::string_view s) noexcept {
    if (rest.substr(0, s.size()) != s) return false;
    rest.remove_prefix(s.size());
    return true;
  }
  std::optional<unsigned> digits(std::size_t count) noexcept {
    if (rest.size() < count) return std::nullopt;
    unsigned v = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (!is_digit(rest[i])) return std::nullopt;
      v = v * 10 + static_cast<unsigned>(rest[i] - '0');
    }
    rest.remove_prefix(count);
    return v;
  }
  template <std::size_t N>
  std::optional<unsigned> name(const std::array<std::string_view, N>& names) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      if (literal(names[i])) return static_cast<unsigned>(i);
    }
    return std::nullopt;
  }
};

struct CivilTime {
  std::int64_t year = 0;
  unsigned month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

// "HH:MM:SS"
bool read_time_of_day(DateCursor& c, CivilTime& t) noexcept {
  const auto h = c.digits(2);
  if (!h || !c.literal(":")) return false;
  const auto m = c.digits(2);
  if (!m || !c.literal(":")) return false;
  const auto s = c.digits(2);
  if (!s) return false;
  t.hour = *h;
  t.minute = *m;
  t.second = *s;
  return true;
}

// IMF-fixdate after the day name: ", 06 Nov 1994 08:49:37 GMT"
bool read_imf_fixdate(DateCursor& c, CivilTime& t) noexcept {
  if (!c.literal(", ")) return false;
  const auto day = c.digits(2);
  if (!day || !c.literal(" ")) return false;
  const auto month = c.name(kMonths);
  if (!month || !c.literal(" ")) return false;
  const auto year = c.digits(4);
  if (!year || !c.literal(" ") || !read_time_of_day(c, t)) return false;
  t.year = *year;
  t.month = *month + 1;
  t.day = *day;
  return c.literal(" GMT");
}

// RFC 850 after the day name: ", 06-Nov-94 08:49:37 GMT". A two-digit year more than 50 years
// ahead of `now_year` is the most recent past year with those digits (RFC 9110 §5.6.7).
bool read_rfc850_date(DateCursor& c, CivilTime& t, std::int64_t now_year) noexcept {
  if (!c.literal(", ")) return false;
  const auto day = c.digits(2);
  if (!day || !c.literal("-")) return false;
  const auto month = c.name(kMonths);
  if (!month || !c.literal("-")) return false;
  const auto year = c.digits(2);
  if (!year || !c.literal(" ") || !read_time_of_day(c, t)) return false;
  t.year = now_year - now_year % 100 + *year;
  if (t.year > now_year + 50) t.year -= 100;
  t.month = *month + 1;
  t.day = *day;
  return c.literal(" GMT");
}

// asctime after the day name: " Nov  6 08:49:37 1994" (day padded with a space, not a zero)
bool read_asctime_date(DateCursor& c, CivilTime& t) noexcept {
  if (!c.literal(" ")) return false;
  const auto month = c.name(kMonths);
  if (!month || !c.literal(" ")) return false;
  const auto day = c.literal(" ") ? c.digits(1) : c.digits(2);
  if (!day || !c.literal(" ") || !read_time_of_day(c, t) || !c.literal(" ")) return false;
  const auto year = c.digits(4);
  if (!year) return false;
  t.year = *year;
  t.month = *month + 1;
  t.day = *day;
  return true;
}

bool is_valid(const CivilTime& t) noexcept {
  // second 60 is a leap second; it simply counts as the next minute's first second.
  return t.month >= 1 && t.month <= 12 && t.day >= 1 && t.day <= days_in_month(t.year, t.month) &&
         t.hour <= 23 && t.minute <= 59 && t.second <= 60;
}

std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view s,
                                                        std::int64_t now_year) noexcept {
  DateCursor c{s};
  CivilTime t;
  bool ok = false;
  if (c.name(kLongDays)) {
    ok = read_rfc850_date(c, t, now_year);
  } else if (c.name(kShortDays)) {
    ok = c.rest.starts_with(",") ? read_imf_fixdate(c, t) : read_asctime_date(c, t);
  }
  if (!ok || !c.rest.empty() || !is_valid(t)) return std::nullopt;
  const std::int64_t seconds =
      days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 + t.minute * 60 + t.second;
  return std::chrono::sys_seconds{std::chrono::seconds{seconds}};
}

std::int64_t civil_year_of(std::chrono::system_clock::time_point now) noexcept {
  const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(now)};
  return static_cast<int>(ymd.year());
}

}  // namespace

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (!value.empty() && is_digit(value.front())) {
    const auto ms = parse_decimal_ceil(value, 3, kMaxRetryAfterMs);
    if (!ms) return std::nullopt;
    return milliseconds{*ms};
  }
  const auto date = parse_http_date(value, civil_year_of(now));
  if (!date) return std::nullopt;
  if (*date <= now) return milliseconds{0};
  const auto ahead = std::chrono::ceil<milliseconds>(*date - now);
  if (ahead.count() > kMaxRetryAfterMs) return std::nullopt;
  return ahead;
}

std::optional<milliseconds> parse_retry_after_ms(std::string_view value) {
  const auto ms = parse_decimal_ceil(trim(value), 0, kMaxRetryAfterMs);
  if (!ms) return std::nullopt;
  return milliseconds{*ms};
}

namespace {

// "ms" comes before "m", so that "20ms" is not read as 20 minutes followed by garbage.
struct GoUnit {
  std::string_view name;
  std::int64_t nanoseconds;
};
constexpr std::array<GoUnit, 8> kGoUnits{{{"ns", 1},
                                          {"us", 1'000},
                                          {"\xC2\xB5s", 1'000},  // U+00B5 micro sign
                                          {"\xCE\xBCs", 1'000},  // U+03BC Greek small mu
                                          {"ms", 1'000'000},
                                          {"s", 1'000'000'000},
                                          {"m", 60'000'000'000},
                                          {"h", 3'600'000'000'000}}};

// One "<decimal><unit>" component, e.g. "1.5h"; adds its length in nanoseconds to `total`.
bool read_go_component(std::string_view& s, std::int64_t& total) noexcept {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::size_t i = 0;
  std::int64_t whole = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    if (whole > (kMax - 9) / 10) return false;
    whole = whole * 10 + (s[i] - '0');
  }
  const std::size_t whole_digits = i;
  std::string_view fraction;
  if (i < s.size() && s[i] == '.') {
    const std::size_t start = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    fraction = s.substr(start, i - start);
  }
  if (whole_digits == 0 && fraction.empty()) return false;  // Go accepts "1.s" and ".5s"
  s.remove_prefix(i);
  const GoUnit* unit = nullptr;
  for (const GoUnit& u : kGoUnits) {
    if (s.starts_with(u.name)) {
      unit = &u;
      break;
    }
  }
  if (unit == nullptr) return false;
  s.remove_prefix(unit->name.size());
  // Strictly below the quotient, so that adding the fraction (< one unit) cannot overflow either.
  if (whole >= (kMax - total) / unit->nanoseconds) return false;
  std::int64_t ns = whole * unit->nanoseconds;
  // Digit k of the fraction is worth unit / 10^k; digits below a nanosecond are dropped.
  std::int64_t place = unit->nanoseconds;
  for (char digit : fraction) {
    place /= 10;
    ns += (digit - '0') * place;
  }
  total += ns;
  return true;
}

}  // namespace

std::optional<milliseconds> parse_go_duration(std::string_view value) {
  std::string_view s = trim(value);
  if (s.starts_with("+")) s.remove_prefix(1);
  if (s == "0") return milliseconds{0};
  if (s.empty()) return std::nullopt;
  std::int64_t total_ns = 0;
  while (!s.empty()) {
    if (!read_go_component(s, total_ns)) return std::nullopt;
  }
  return milliseconds{total_ns / 1'000'000 + (total_ns % 1'000'000 != 0 ? 1 : 0)};
}

}  // namespace llm_caching::core
