// The retry decision: exponential backoff with full jitter, provider hints, the total budget, and
// the parsers for Retry-After, retry-after-ms and Go durations.
#include "core/retry.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace llm_caching::core {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

RetryHint hint(milliseconds ms) {
  return RetryHint{.retry_after = ms};
}

// ---- RetryPolicy ----

TEST(RetryPolicy, StartsWithOneAttemptAndNothingWaited) {
  const RetryPolicy policy({});
  EXPECT_EQ(policy.attempts(), 1);
  EXPECT_EQ(policy.waited(), 0ms);
  EXPECT_FALSE(policy.last_retry_after().has_value());
}

TEST(RetryPolicy, ComputedWaitsStayWithinTheDoublingBackoff) {
  RetryPolicy policy({.initial_wait = 100ms, .max_wait = 1h, .max_single_wait = 60s}, 42);
  milliseconds backoff = 100ms;
  milliseconds total{0};
  for (int retry = 0; retry < 12; ++retry) {
    const RetryDecision d = policy.next();
    ASSERT_FALSE(d.give_up) << retry;
    EXPECT_GE(d.wait, 1ms) << retry;
    EXPECT_LE(d.wait, backoff) << retry;
    total += d.wait;
    backoff = std::min(backoff * 2, milliseconds{60s});
  }
  EXPECT_EQ(policy.waited(), total);
  EXPECT_EQ(policy.attempts(), 13);
}

TEST(RetryPolicy, SingleWaitsNeverExceedTheCap) {
  RetryPolicy policy({.initial_wait = 100ms, .max_wait = 24h, .max_single_wait = 500ms}, 1);
  std::set<milliseconds::rep> seen;
  for (int retry = 0; retry < 300; ++retry) {
    const RetryDecision d = policy.next();
    ASSERT_FALSE(d.give_up);
    ASSERT_LE(d.wait, 500ms);
    seen.insert(d.wait.count());
  }
  // Full jitter spreads over the whole range rather than sitting at the bound.
  EXPECT_LT(*seen.begin(), 100);
  EXPECT_GT(*seen.rbegin(), 400);
  EXPECT_GT(seen.size(), 100u);
}

TEST(RetryPolicy, SameSeedSameWaitsDifferentSeedDifferentWaits) {
  const RetryOptions opts{.initial_wait = 1s, .max_wait = 24h, .max_single_wait = 60s};
  RetryPolicy a(opts, 7), b(opts, 7), c(opts, 8);
  std::vector<milliseconds> wa, wb, wc;
  for (int i = 0; i < 10; ++i) {
    wa.push_back(a.next().wait);
    wb.push_back(b.next().wait);
    wc.push_back(c.next().wait);
  }
  EXPECT_EQ(wa, wb);
  EXPECT_NE(wa, wc);
}

TEST(RetryPolicy, ProviderHintOverridesTheComputedWaitExactly) {
  RetryPolicy policy({.initial_wait = 1s, .max_wait = 60s}, 3);
  const RetryDecision d = policy.next(hint(4500ms));
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.wait, 4500ms);
  EXPECT_EQ(policy.last_retry_after(), 4500ms);
  // Without a hint the next wait is computed again, from a backoff that kept doubling.
  const RetryDecision computed = policy.next();
  EXPECT_LE(computed.wait, 2s);
  EXPECT_EQ(policy.last_retry_after(), 4500ms);  // the last hint is remembered
}

TEST(RetryPolicy, ZeroHintStillWaitsOneMillisecond) {
  RetryPolicy policy({.initial_wait = 1s, .max_wait = 10s});
  EXPECT_EQ(policy.next(hint(0ms)).wait, 1ms);
  EXPECT_EQ(policy.last_retry_after(), 0ms);
}

TEST(RetryPolicy, GivesUpExactlyWhenTheNextWaitWouldCrossTheBudget) {
  RetryPolicy policy({.initial_wait = 1s, .max_wait = 10s});
  RetryDecision d = policy.next(hint(4s));
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.wait, 4s);
  d = policy.next(hint(4s));
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.wait, 4s);
  d = policy.next(hint(4s));
  EXPECT_TRUE(d.give_up);
  EXPECT_EQ(policy.attempts(), 3);
  EXPECT_EQ(policy.waited(), 8s);  // the refused wait is not added
  EXPECT_EQ(policy.last_retry_after(), 4s);
  // Once given up, even a wait that would fit is refused.
  EXPECT_TRUE(policy.next(hint(1ms)).give_up);
  EXPECT_EQ(policy.attempts(), 3);
  EXPECT_EQ(policy.waited(), 8s);
}

TEST(RetryPolicy, AWaitThatFillsTheBudgetExactlyIsAllowed) {
  RetryPolicy policy({.initial_wait = 1s, .max_wait = 10s});
  EXPECT_FALSE(policy.next(hint(5s)).give_up);
  EXPECT_FALSE(policy.next(hint(5s)).give_up);
  EXPECT_EQ(policy.waited(), 10s);
  EXPECT_TRUE(policy.next(hint(1ms)).give_up);
}

TEST(RetryPolicy, ComputedWaitsNeverPushTheTotalPastTheBudget) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    RetryPolicy policy({.initial_wait = 200ms, .max_wait = 3s, .max_single_wait = 2s}, seed);
    int retries = 0;
    while (!policy.next().give_up) ASSERT_LT(++retries, 10'000);
    EXPECT_LE(policy.waited(), 3s) << seed;
    EXPECT_EQ(policy.attempts(), retries + 1) << seed;
  }
}

TEST(RetryPolicy, ZeroBudgetGivesUpAtOnce) {
  RetryPolicy policy({.initial_wait = 1s, .max_wait = 0ms});
  EXPECT_TRUE(policy.next().give_up);
  EXPECT_EQ(policy.attempts(), 1);
  EXPECT_EQ(policy.waited(), 0ms);
  RetryPolicy hinted({.initial_wait = 1s, .max_wait = 0ms});
  EXPECT_TRUE(hinted.next(hint(0ms)).give_up);
}

TEST(RetryPolicy, ZeroInitialWaitStillSpendsBudgetAndEnds) {
  RetryPolicy policy({.initial_wait = 0ms, .max_wait = 100ms, .max_single_wait = 0ms});
  int retries = 0;
  while (!policy.next().give_up) ASSERT_LT(++retries, 1000);
  EXPECT_EQ(retries, 100);  // every wait is exactly the 1 ms floor
  EXPECT_EQ(policy.waited(), 100ms);
}

// ---- parse_retry_after: delta-seconds ----

const system_clock::time_point kNow = sys_days{2026y / October / 21} + 7h + 27min;  // 07:27:00

TEST(ParseRetryAfter, DeltaSeconds) {
  EXPECT_EQ(parse_retry_after("120", kNow), 120s);
  EXPECT_EQ(parse_retry_after("0", kNow), 0ms);
  EXPECT_EQ(parse_retry_after("1.5", kNow), 1500ms);
  EXPECT_EQ(parse_retry_after("0.0001", kNow), 1ms);  // rounds up: never come back early
  EXPECT_EQ(parse_retry_after("1.2341", kNow), 1235ms);
  EXPECT_EQ(parse_retry_after("007", kNow), 7s);
  EXPECT_EQ(parse_retry_after(" 30\t", kNow), 30s);
  EXPECT_EQ(parse_retry_after("86400", kNow), 24h);
}

TEST(ParseRetryAfter, RejectsGarbageNegativeAndAbsurdDeltas) {
  for (const char* bad : {"", " ", "soon", "-1", "+5", "1.", ".5", "1e3", "12abc", "1,5", "1 2",
                          "86400.001", "86401", "99999999999999999999999999", "0x10", "1..5"}) {
    EXPECT_EQ(parse_retry_after(bad, kNow), std::nullopt) << '"' << bad << '"';
  }
}

// ---- parse_retry_after: HTTP dates ----

TEST(ParseRetryAfter, ImfFixdateInTheFuture) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", kNow), 60s);
  EXPECT_EQ(parse_retry_after("Thu, 22 Oct 2026 07:27:00 GMT", kNow), 24h);  // exactly a day
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", kNow + 59s + 500ms), 500ms);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", kNow + 59s + 999'999us), 1ms);
}

TEST(ParseRetryAfter, DatesInThePastOrNowGiveZero) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2026 07:27:00 GMT", kNow), 0ms);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2026 07:26:59 GMT", kNow), 0ms);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kNow), 0ms);
}

TEST(ParseRetryAfter, DatesMoreThanADayAheadAreRejected) {
  EXPECT_EQ(parse_retry_after("Thu, 22 Oct 2026 07:27:01 GMT", kNow), std::nullopt);
  EXPECT_EQ(parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", kNow), std::nullopt);
}

TEST(ParseRetryAfter, ObsoleteRfc850AndAsctimeForms) {
  EXPECT_EQ(parse_retry_after("Wednesday, 21-Oct-26 07:28:00 GMT", kNow), 60s);
  EXPECT_EQ(parse_retry_after("Wed Oct 21 07:28:00 2026", kNow), 60s);
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", kNow), 0ms);
  const auto nov5 = sys_days{2026y / November / 5} + 23h + 59min;
  EXPECT_EQ(parse_retry_after("Fri Nov  6 00:00:00 2026", nov5), 60s);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", kNow), 0ms);  // 1994, past
}

TEST(ParseRetryAfter, Rfc850TwoDigitYearsMoreThan50YearsAheadMeanThePast) {
  // From 2026, "76" is 2076 (exactly 50 years ahead, so too far for a Retry-After) and "77" is
  // 1977 (in the past, so 0).
  EXPECT_EQ(parse_retry_after("Wednesday, 21-Oct-76 07:28:00 GMT", kNow), std::nullopt);
  EXPECT_EQ(parse_retry_after("Thursday, 21-Oct-77 07:28:00 GMT", kNow), 0ms);
}

TEST(ParseRetryAfter, LeapDaysAndYearBoundaries) {
  const auto feb28_2028 = sys_days{2028y / February / 28} + 23h + 59min;
  EXPECT_EQ(parse_retry_after("Tue, 29 Feb 2028 00:00:00 GMT", feb28_2028), 60s);
  const auto feb29_2028 = sys_days{2028y / February / 29} + 23h + 59min;
  EXPECT_EQ(parse_retry_after("Wed, 01 Mar 2028 00:00:00 GMT", feb29_2028), 60s);
  const auto new_year_eve = sys_days{2026y / December / 31} + 23h + 59min + 30s;
  EXPECT_EQ(parse_retry_after("Fri, 01 Jan 2027 00:00:00 GMT", new_year_eve), 30s);
  EXPECT_EQ(parse_retry_after("Sun, 29 Feb 2026 00:00:00 GMT", kNow), std::nullopt);  // not leap
  EXPECT_EQ(parse_retry_after("Tue, 29 Feb 2100 00:00:00 GMT", kNow), std::nullopt);  // not leap
  const auto feb28_2000 = sys_days{2000y / February / 28} + 23h + 59min;
  EXPECT_EQ(parse_retry_after("Tue, 29 Feb 2000 00:00:00 GMT", feb28_2000), 60s);  // leap
}

TEST(ParseRetryAfter, AgreesWithTheStandardCalendarOverManyYears) {
  constexpr std::array<const char*, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // Every 7th day from 1970 to about 2150, so every weekday, month and leap rule is crossed.
  for (sys_days day = sys_days{1970y / January / 1}; day < sys_days{2150y / January / 1};
       day += days{7}) {
    const year_month_day ymd{day};
    char text[64];
    std::snprintf(text, sizeof text, "%s, %02u %s %04d 12:34:56 GMT",
                  kDays[weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                  kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()));
    const auto now = day + 12h + 34min + 55s;
    ASSERT_EQ(parse_retry_after(text, now), 1s) << text;
  }
}

TEST(ParseRetryAfter, RejectsMalformedDates) {
  for (const char* bad : {
           "Wed, 21 Oct 2026 07:28:00 UTC",        // GMT only
           "Wed, 21 Oct 2026 07:28:00",            // zone missing
           "wed, 21 Oct 2026 07:28:00 GMT",        // case-sensitive
           "Wed, 21 oct 2026 07:28:00 GMT",        //
           "Wed, 32 Oct 2026 07:28:00 GMT",        // day out of range
           "Wed, 00 Oct 2026 07:28:00 GMT",        //
           "Wed, 31 Sep 2026 07:28:00 GMT",        // September has 30 days
           "Wed, 21 Foo 2026 07:28:00 GMT",        // month
           "Wed, 21 Oct 2026 24:00:00 GMT",        // hour
           "Wed, 21 Oct 2026 07:60:00 GMT",        // minute
           "Wed, 21 Oct 2026 07:28:61 GMT",        // second
           "Wed, 21 Oct 26 07:28:00 GMT",          // two-digit year in IMF form
           "Wed, 1 Oct 2026 07:28:00 GMT",         // day must be two digits
           "Wed,21 Oct 2026 07:28:00 GMT",         // spacing
           "Wed, 21 Oct 2026 07:28:00 GMT x",      // trailing text
           "Xyz, 21 Oct 2026 07:28:00 GMT",        // day name
           "Wed, 21 Oct 2026 7:28:00 GMT",         // hour digits
           "Wednesday, 21 Oct 2026 07:28:00 GMT",  // long day name with IMF date
           "Wed Oct 21 07:28:00 26",               // asctime needs a 4-digit year
           "Wed Oct 1 07:28:00 2026",              // asctime pads with a space
           "Wed",
       }) {
    EXPECT_EQ(parse_retry_after(bad, kNow), std::nullopt) << '"' << bad << '"';
  }
}

// ---- parse_retry_after_ms ----

TEST(ParseRetryAfterMs, ParsesMilliseconds) {
  EXPECT_EQ(parse_retry_after_ms("1500"), 1500ms);
  EXPECT_EQ(parse_retry_after_ms("0"), 0ms);
  EXPECT_EQ(parse_retry_after_ms("1500.2"), 1501ms);
  EXPECT_EQ(parse_retry_after_ms(" 20 "), 20ms);
  EXPECT_EQ(parse_retry_after_ms("86400000"), 24h);
}

TEST(ParseRetryAfterMs, RejectsGarbageNegativeAndAbsurd) {
  for (const char* bad :
       {"", "-5", "abc", "1e3", "15s", "86400001", "1.", "99999999999999999999"}) {
    EXPECT_EQ(parse_retry_after_ms(bad), std::nullopt) << '"' << bad << '"';
  }
}

// ---- parse_go_duration ----

TEST(ParseGoDuration, ParsesOpenAiResetValues) {
  EXPECT_EQ(parse_go_duration("6m0s"), 6min);
  EXPECT_EQ(parse_go_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_go_duration("20ms"), 20ms);
  EXPECT_EQ(parse_go_duration("1h2m3s"), 1h + 2min + 3s);
  EXPECT_EQ(parse_go_duration("1h2m"), 1h + 2min);
  EXPECT_EQ(parse_go_duration("0s"), 0ms);
  EXPECT_EQ(parse_go_duration("0"), 0ms);
  EXPECT_EQ(parse_go_duration("1.5h"), 90min);
  EXPECT_EQ(parse_go_duration("2m30.5s"), 150500ms);
  EXPECT_EQ(parse_go_duration(".5s"), 500ms);
  EXPECT_EQ(parse_go_duration("1.s"), 1s);
  EXPECT_EQ(parse_go_duration("+3s"), 3s);
  EXPECT_EQ(parse_go_duration("17.123456789s"), 17124ms);
}

TEST(ParseGoDuration, SubMillisecondUnitsRoundUp) {
  EXPECT_EQ(parse_go_duration("250us"), 1ms);
  EXPECT_EQ(parse_go_duration("250\xC2\xB5s"), 1ms);  // µ micro sign
  EXPECT_EQ(parse_go_duration("250\xCE\xBCs"), 1ms);  // μ Greek mu
  EXPECT_EQ(parse_go_duration("1500000ns"), 2ms);
  EXPECT_EQ(parse_go_duration("2000us"), 2ms);
  EXPECT_EQ(parse_go_duration("1ns"), 1ms);
}

TEST(ParseGoDuration, RejectsGarbage) {
  for (const char* bad : {"", "s", "5", "5x", "-1s", "1.5", "1h-2m", "abc", "1..5s", "1 s", ".s",
                          "1sm", "9999999999999999999h", "3000000h", "1S"}) {
    EXPECT_EQ(parse_go_duration(bad), std::nullopt) << '"' << bad << '"';
  }
}

}  // namespace
}  // namespace llm_caching::core
