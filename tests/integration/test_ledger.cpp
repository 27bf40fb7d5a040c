// The ledger end to end (docs/COSTS.md): mixed calls through the gateway (three providers; hits,
// misses, coalesced, failed) and the library land in the cache's ledger, and `costs --json` and
// /costs sum them to the nano-dollar; records written while Redis is down wait in the spill file
// and reach Redis once it is back.
#include <gtest/gtest.h>

#include "core/ledger.hpp"
#include "integration/gateway_harness.hpp"
#include "llm_caching/agent.hpp"
#include "llm_caching/runtime.hpp"
#include "support/redis_server.hpp"

#include <future>
#include <thread>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

/// `llm-caching serve` over `cache_url`, its ledger spilling into `spill_dir`.
class LedgerGateway {
 public:
  LedgerGateway(const FakeProvider& fake, const std::string& cache_url,
                const std::string& spill_dir)
      : process_({kCliPath,
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
                  spill_dir}),
        port_(port_of(process_.ready_line())) {}

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int stop() { return process_.stop(); }

 private:
  llmc_test::ChildProcess process_;
  std::uint16_t port_;
};

/// "0.00000555" (x-llm-cost-usd) as nano-USD, exactly.
std::int64_t nano_of(const std::string& dollars) {
  const std::size_t dot = dollars.find('.');
  std::int64_t whole = std::stoll(dollars.substr(0, dot));
  std::string fraction = dot == std::string::npos ? "" : dollars.substr(dot + 1);
  fraction.resize(9, '0');
  return whole * 1'000'000'000 + std::stoll(fraction);
}

struct Sent {
  std::int64_t calls = 0;
  std::int64_t cost_nano_usd = 0;
  std::int64_t failed = 0;
  std::int64_t hits = 0;  ///< HIT and COALESCED
};

/// Request i of a mixed run: provider i % 3, a text repeated once in a while (hits), every 25th
/// a failure from the upstream.
HttpResponse send_one(const LedgerGateway& gateway, int i, const std::string& run) {
  const bool fails = i % 25 == 24;
  const std::string text = run + " question " + std::to_string(fails ? 100'000 + i : i % 40);
  Headers headers = {{"x-llm-task", "task-" + std::to_string(i % 4)},
                     {"x-llm-tags", i % 2 == 0 ? "even, all" : "all"}};
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

void tally(Sent& sent, const HttpResponse& r) {
  ++sent.calls;
  if (r.status != 200) {
    ++sent.failed;
    return;
  }
  sent.cost_nano_usd += nano_of(r.header("x-llm-cost-usd"));
  const std::string cache = r.header("x-llm-cache");
  if (cache == "HIT" || cache == "COALESCED") ++sent.hits;
}

Sent send_mixed(const LedgerGateway& gateway, int from, int to, const std::string& run) {
  Sent sent;
  for (int i = from; i < to; ++i) tally(sent, send_one(gateway, i, run));
  return sent;
}

/// A burst of identical slow requests: one miss, the rest coalesced (or hits).
Sent send_burst(const LedgerGateway& gateway, int count, const std::string& text) {
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

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json::object costs_json(const std::string& body) {
  json::value parsed = json::parse(body);
  return parsed.as_object();
}

json::object cli_costs(const std::string& cache_url, const std::string& by) {
  const auto result =
      llmc_test::run_shell(std::string(kCliPath) + " costs --json --since 1d --by " + by +
                           " --cache-url '" + cache_url + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return costs_json(result.output);
}

HttpResponse get(const std::string& url) {
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  return send(std::move(request));
}

TEST(Ledger, MixedGatewayCallsOnRedisSumExactlyInCostsJson) {
  llmc_test::RedisServer redis;
  FakeProvider fake;
  llmc_test::TempDir spill;
  Sent sent;
  {
    LedgerGateway gateway(fake, redis.url(), spill.path().string());
    Sent mixed = send_mixed(gateway, 0, 300, "mixed");
    Sent burst = send_burst(gateway, 20, "one burst");
    for (const Sent& s : {mixed, burst}) {
      sent.calls += s.calls, sent.cost_nano_usd += s.cost_nano_usd;
      sent.failed += s.failed, sent.hits += s.hits;
    }
    EXPECT_GT(sent.hits, 100);
    EXPECT_EQ(sent.failed, 12);

    const HttpResponse report = get(gateway.url("/costs?since=1h&by=outcome"));
    ASSERT_EQ(report.status, 200) << report.body;
    const json::object total = costs_json(report.body).at("total").as_object();
    EXPECT_EQ(total.at("calls").as_int64(), sent.calls);
    EXPECT_EQ(total.at("spent_nano_usd").as_int64(), sent.cost_nano_usd);
    EXPECT_EQ(total.at("failed").as_int64(), sent.failed);
    EXPECT_EQ(total.at("hits").as_int64(), sent.hits);
    EXPECT_EQ(get(gateway.url("/costs?by=colour")).status, 400);
    // Records still in the writer when the gateway is stopped are stored before it exits.
    const Sent last = send_mixed(gateway, 300, 306, "last");
    sent.calls += last.calls, sent.cost_nano_usd += last.cost_nano_usd;
    sent.failed += last.failed, sent.hits += last.hits;
    EXPECT_EQ(gateway.stop(), 0);
  }
  const json::object by_task = cli_costs(redis.url(), "task");
  EXPECT_EQ(by_task.at("total").as_object().at("spent_nano_usd").as_int64(), sent.cost_nano_usd);
  EXPECT_EQ(by_task.at("total").as_object().at("calls").as_int64(), sent.calls);
  EXPECT_EQ(by_task.at("rows").as_array().size(), 5u);  // task-0..3 and burst
  const json::object by_tag = cli_costs(redis.url(), "tag");
  for (const json::value& row : by_tag.at("rows").as_array()) {
    if (row.at("key").as_string() == "all") EXPECT_EQ(row.at("calls").as_int64(), 306);
    if (row.at("key").as_string() == "even") EXPECT_EQ(row.at("calls").as_int64(), 153);
  }
  // The per-day counters beside the stream hold the same totals.
  const std::string day_key = "llm-caching:{ledger}:day:" + llm_caching::core::utc_day(now_ms());
  EXPECT_EQ(redis.cli({"HGET", day_key, "total::calls"}), std::to_string(sent.calls));
  EXPECT_EQ(redis.cli({"HGET", day_key, "total::spent_nano_usd"}),
            std::to_string(sent.cost_nano_usd));
}

TEST(Ledger, RecordsWrittenWhileRedisIsDownReachItOnceItIsBack) {
  llmc_test::RedisServer redis({.persistent = true});
  FakeProvider fake;
  llmc_test::TempDir spill;
  LedgerGateway gateway(fake, redis.url(), spill.path().string());
  Sent sent = send_mixed(gateway, 0, 60, "before");
  ASSERT_EQ(get(gateway.url("/costs?since=1h")).status, 200);  // flushed into Redis
  redis.kill();
  // The cache degrades (every call goes upstream); the ledger spills.
  const Sent down = send_mixed(gateway, 60, 120, "while down");
  EXPECT_EQ(get(gateway.url("/costs?since=1h")).status, 503);
  redis.start();
  sent.calls += down.calls, sent.cost_nano_usd += down.cost_nano_usd;
  // The gateway reconnects in the background: ask until it has (bounded, not timed).
  json::object total;
  for (int attempt = 0; attempt < 600; ++attempt) {
    const HttpResponse report = get(gateway.url("/costs?since=1h"));
    if (report.status == 200) {
      total = costs_json(report.body).at("total").as_object();
      if (total.at("calls").as_int64() == sent.calls) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(total.empty());
  EXPECT_EQ(total.at("calls").as_int64(), sent.calls);
  EXPECT_EQ(total.at("spent_nano_usd").as_int64(), sent.cost_nano_usd);
  EXPECT_EQ(gateway.stop(), 0);
  // Replayed: the spill file is gone.
  EXPECT_TRUE(std::filesystem::is_empty(spill.path()));
}

TEST(Ledger, LibraryCallsWithRunOptionsLedgerLandInTheSqliteFile) {
  FakeProvider fake;
  llmc_test::TempDir dir;
  const std::string cache_url = "sqlite://" + dir.file("cache.db");
  std::int64_t spent = 0;
  std::int64_t avoided = 0;
  {
    llm_caching::RuntimeOptions runtime_options;
    runtime_options.ledger_spill_dir = dir.file("spill");
    llm_caching::Runtime runtime(runtime_options);
    llm_caching::RunOptions options;
    options.cache_url = cache_url;
    options.runtime = &runtime;
    options.ledger = true;
    options.tenant = "team-a";
    options.tags = {"lib", "nightly"};
    options.initial_wait = 1ms;
    options.max_wait = 0ms;
    const llm_caching::Agent agent{
        .model = "openai:gpt-4o-mini", .base_url = fake.base_url() + "/v1", .api_key = "sk-lib"};
    for (int i = 0; i < 30; ++i) {
      const auto result = llm_caching::cached_agent_run_sync(
          agent, "library question " + std::to_string(i % 10), "lib-task", options);
      spent += result.cost_nano_usd;
      avoided += result.avoided_cost_nano_usd;
    }
    const llm_caching::Agent failing{.model = "openai:gpt-4o-mini+500",
                                     .base_url = fake.base_url() + "/v1",
                                     .api_key = "sk-lib"};
    options.custom_costs["gpt-4o-mini+500"] = llm_caching::CostTable::defaults().at("gpt-4o-mini");
    EXPECT_THROW(llm_caching::cached_agent_run_sync(failing, "fails", "lib-task", options),
                 llm_caching::ProviderError);
  }  // the runtime's end flushes the ledger
  const json::object by_outcome = cli_costs(cache_url, "outcome");
  const json::object& total = by_outcome.at("total").as_object();
  EXPECT_EQ(total.at("calls").as_int64(), 31);
  EXPECT_EQ(total.at("hits").as_int64(), 20);
  EXPECT_EQ(total.at("failed").as_int64(), 1);
  EXPECT_EQ(total.at("spent_nano_usd").as_int64(), spent);
  EXPECT_EQ(total.at("avoided_nano_usd").as_int64(), avoided);
  const json::object by_tenant = cli_costs(cache_url, "tenant");
  EXPECT_EQ(by_tenant.at("rows").as_array().at(0).at("key").as_string(), "team-a");
  const auto table = llmc_test::run_shell(std::string(kCliPath) + " costs --by tag --cache-url '" +
                                          cache_url + "'");
  EXPECT_NE(table.output.find("nightly"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("TOTAL"), std::string::npos) << table.output;
}

}  // namespace
