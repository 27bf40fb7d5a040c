// What the ledger's end-to-end tests share (test_ledger*.cpp): a gateway over a cache with its
// ledger on and three upstreams, a mixed run of calls through it, and the reports read back.
#pragma once

#include "core/ledger.hpp"
#include "integration/gateway_harness.hpp"
#include "support/redis_server.hpp"

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace ledger_test {

using namespace gateway_test;
using llmc_test::FakeProvider;
using Headers = std::vector<std::pair<std::string, std::string>>;

/// `llm-caching serve` over `cache_url`, its ledger spilling into `spill_dir`.
class LedgerGateway {
 public:
  /// `serve_flags` go after serve's own (e.g. --share-cache-across-keys).
  LedgerGateway(const FakeProvider& fake, const std::string& cache_url,
                const std::string& spill_dir, const std::vector<std::string>& serve_flags = {})
      : process_(command(fake, cache_url, spill_dir, serve_flags)),
        port_(port_of(process_.ready_line())) {}

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int stop() { return process_.stop(); }

 private:
  static std::vector<std::string> command(const FakeProvider& fake, const std::string& cache_url,
                                          const std::string& spill_dir,
                                          const std::vector<std::string>& serve_flags) {
    std::vector<std::string> args = {kCliPath,
                                     "--cache-url",
                                     cache_url,
                                     "serve",
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--threads",
                                     "2",
                                     "--log-level",
                                     "error",
                                     "--initial-wait-ms",
                                     "20",
                                     "--upstream",
                                     "openai=" + fake.base_url() + "/v1",
                                     "--upstream",
                                     "anthropic=" + fake.base_url(),
                                     "--upstream",
                                     "gemini=" + fake.base_url(),
                                     "--ledger-spill-dir",
                                     spill_dir};
    args.insert(args.end(), serve_flags.begin(), serve_flags.end());
    return args;
  }

  llmc_test::ChildProcess process_;
  std::uint16_t port_;
};

/// What a run's answers said: counts by x-llm-cache and the costs of x-llm-cost-usd.
struct Sent {
  std::int64_t calls = 0;
  std::int64_t cost_nano_usd = 0;
  std::int64_t failed = 0;
  std::int64_t hits = 0;  ///< HIT, COALESCED and STALE (the report's "hits")
  std::int64_t coalesced = 0;
  std::int64_t stale = 0;
  Sent& operator+=(const Sent& other) {
    calls += other.calls, cost_nano_usd += other.cost_nano_usd, failed += other.failed;
    hits += other.hits, coalesced += other.coalesced, stale += other.stale;
    return *this;
  }
};

/// The shape of a mixed run: how many distinct texts it repeats, and how often a call fails.
struct Mix {
  int distinct_texts = 40;
  int fail_every = 25;  ///< every Nth call gets a 500 from the upstream; 0: none
  Headers extra;        ///< sent with every call
};

/// Request i of a mixed run: provider i % 3, text i % mix.distinct_texts (so repeats are hits),
/// and every mix.fail_every-th a failure from the upstream.
inline HttpResponse send_one(const LedgerGateway& gateway, int i, const std::string& run,
                             const Mix& mix = {}) {
  const bool fails = mix.fail_every > 0 && i % mix.fail_every == mix.fail_every - 1;
  const std::string text =
      run + " question " + std::to_string(fails ? 100'000 + i : i % mix.distinct_texts);
  Headers headers = {{"x-llm-task", "task-" + std::to_string(i % 4)},
                     {"x-llm-tags", i % 2 == 0 ? "even, all" : "all"}};
  headers.insert(headers.end(), mix.extra.begin(), mix.extra.end());
  if (fails) {
    headers.emplace_back("x-fake-behavior", "500");
    headers.emplace_back("x-llm-max-wait-ms", "0");
  }
  switch (i % 3) {
    case 0:
      headers.emplace_back("authorization", "Bearer sk-ledger");
      return send(post(gateway.url("/v1/chat/completions"), openai_body(text), headers));
    case 1:
      headers.emplace_back("x-api-key", "sk-ant-ledger");
      return send(post(gateway.url("/v1/messages"), anthropic_body(text), headers));
    default:
      headers.emplace_back("x-goog-api-key", "g-ledger");
      return send(post(gateway.url("/v1beta/models/gemini-2.0-flash:generateContent"),
                       gemini_body(text), headers));
  }
}

inline void tally(Sent& sent, const HttpResponse& r) {
  ++sent.calls;
  if (r.status != 200) {
    ++sent.failed;
    return;
  }
  sent.cost_nano_usd += nano_usd_of(r.header("x-llm-cost-usd"));
  const std::string cache = r.header("x-llm-cache");
  if (cache == "HIT" || cache == "COALESCED" || cache == "STALE") ++sent.hits;
  if (cache == "COALESCED") ++sent.coalesced;
  if (cache == "STALE") ++sent.stale;
}

inline Sent send_mixed(const LedgerGateway& gateway, int from, int to, const std::string& run,
                       const Mix& mix = {}) {
  Sent sent;
  for (int i = from; i < to; ++i) tally(sent, send_one(gateway, i, run, mix));
  return sent;
}

/// A burst of identical slow requests: one miss, the rest coalesced (or hits).
inline Sent send_burst(const LedgerGateway& gateway, int count, const std::string& text) {
  std::vector<std::future<HttpResponse>> pending;
  for (int i = 0; i < count; ++i) {
    pending.push_back(std::async(std::launch::async, [&] {
      Headers headers = {{"authorization", "Bearer sk-ledger"},
                         {"x-fake-behavior", "delay-300"},
                         {"x-llm-task", "burst"}};
      return send(post(gateway.url("/v1/chat/completions"), openai_body(text), headers));
    }));
  }
  Sent sent;
  for (auto& p : pending) tally(sent, p.get());
  return sent;
}

inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline json::object costs_json(const std::string& body) {
  json::value parsed = json::parse(body);
  return parsed.as_object();
}

inline json::object cli_costs(const std::string& cache_url, const std::string& by) {
  const auto result =
      llmc_test::run_shell(std::string(kCliPath) + " costs --json --since 1d --by " + by +
                           " --cache-url '" + cache_url + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return costs_json(result.output);
}

inline HttpResponse get(const std::string& url) {
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  return send(std::move(request));
}

/// The "total" of the gateway's /costs once its calls reach `calls`, asking every 50 ms at most
/// `attempts` times (the ledger's writer stores records in the background); the last total read,
/// empty if /costs never answered.
inline json::object total_once_calls_reach(const LedgerGateway& gateway, std::int64_t calls,
                                           int attempts) {
  json::object total;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const HttpResponse report = get(gateway.url("/costs?since=1h"));
    if (report.status == 200) {
      total = costs_json(report.body).at("total").as_object();
      if (total.at("calls").as_int64() == calls) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return total;
}

/// A field of the ledger's per-day Redis hashes ("total::calls"), summed over the UTC days of
/// `since_ms` and of now: a run (minutes long) may cross midnight.
inline std::int64_t day_counter(const llmc_test::RedisServer& redis, const std::string& field,
                                std::int64_t since_ms) {
  std::vector<std::string> days = {llm_caching::core::utc_day(since_ms)};
  if (const std::string today = llm_caching::core::utc_day(now_ms()); today != days.front()) {
    days.push_back(today);
  }
  std::int64_t sum = 0;
  for (const std::string& day : days) {
    const std::string value = redis.cli({"HGET", "llm-caching:{ledger}:day:" + day, field});
    if (!value.empty()) sum += std::stoll(value);
  }
  return sum;
}

}  // namespace ledger_test
