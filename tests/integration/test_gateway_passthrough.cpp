// `llm-caching serve` passing through what it does not cache: a multipart upload with binary
// bytes reaches the fake provider unchanged, methods and queries are kept, nothing is cached,
// each request is counted by route class, and the cached routes' auth rules apply.
#include <gtest/gtest.h>

#include "cache/fnv1a.hpp"
#include "integration/gateway_harness.hpp"

#include <cstdio>
#include <fstream>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;

const std::string kAuth = "-H 'Authorization: Bearer sk-passthrough-secret' ";

std::string hex(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

/// Every byte value, twice, and a line that looks like a multipart delimiter.
std::string binary_file() {
  std::string bytes;
  for (int round = 0; round < 2; ++round) {
    for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  }
  return bytes + "\r\n--not-the-boundary\r\n";
}

std::string metric(const std::string& metrics, const std::string& series) {
  const auto at = metrics.find(series + " ");
  if (at == std::string::npos) return "absent";
  const auto start = at + series.size() + 1;
  return metrics.substr(start, metrics.find('\n', start) - start);
}

TEST(GatewayPassthrough, MultipartUploadArrivesUnchangedAndIsNeverCached) {
  FakeProvider fake;
  GatewayProcess gateway(fake);
  llmc_test::TempDir dir;
  const std::string file = dir.file("data.bin");
  const std::string bytes = binary_file();
  std::ofstream(file, std::ios::binary) << bytes;

  const std::string upload = kAuth + "-H 'Expect:' -F purpose=batch -F " +
                             quoted("file=@" + file + ";filename=data.bin") + " " +
                             gateway.base_url() + "/v1/files";
  const CurlResult first = curl(upload);
  const CurlResult second = curl(upload);
  ASSERT_EQ(first.status, 200) << first.body;
  const json::value answer = json::parse(first.body);
  EXPECT_EQ(answer.at("bytes").as_int64(), static_cast<std::int64_t>(bytes.size()));
  EXPECT_EQ(answer.at("fnv1a").as_string(), hex(llm_caching::cache::fnv1a64(bytes)));
  EXPECT_EQ(answer.at("filename").as_string(), "data.bin");
  EXPECT_EQ(answer.at("purpose").as_string(), "batch");
  EXPECT_EQ(first.headers.count("x-llm-cache"), 0u);  // not a cached route
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(upstream_calls(fake), 2);  // both went upstream

  // Another method, with a query: kept as they came.
  const CurlResult got = curl(kAuth + gateway.base_url() + "/v1/files/file-xyz?limit=1");
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(json::parse(got.body).at("id").as_string(), "file-xyz");
  // The upstream's own errors come back as they are.
  const CurlResult deleted = curl(kAuth + "-X DELETE " + gateway.base_url() + "/v1/batches/b-1");
  EXPECT_EQ(deleted.status, 404);
  EXPECT_EQ(json::parse(deleted.body).at("error").at("code").as_string(), "unknown_url");

  const std::string metrics = curl(gateway.base_url() + "/metrics").body;
  EXPECT_EQ(metric(metrics, R"(llmc_gateway_passthrough_requests_total{class="files"})"), "3");
  EXPECT_EQ(metric(metrics, R"(llmc_gateway_passthrough_requests_total{class="batches"})"), "1");
}

TEST(GatewayPassthrough, TheCachedRoutesAuthRulesApply) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--require-key"}, {}, GatewayStderr::captured);
  // No key: refused by the gateway, in the provider's format, before any upstream call.
  const CurlResult keyless = curl(gateway.base_url() + "/v1/files/file-1");
  EXPECT_EQ(keyless.status, 401);
  EXPECT_TRUE(json::parse(keyless.body).as_object().contains("error"));
  // The fake's own check: the caller's key is forwarded as a bearer token.
  const CurlResult keyed = curl(kAuth + gateway.base_url() + "/v1/files/file-1");
  EXPECT_EQ(keyed.status, 200) << keyed.body;
  // An Anthropic caller on /v1/: its key goes to the Anthropic upstream in x-api-key (the fake
  // answers its files route for OpenAI callers only, so this is its 401 for a missing bearer).
  const CurlResult anthropic =
      curl("-H 'x-api-key: sk-ant-passthrough-secret' -H 'anthropic-version: 2023-06-01' " +
           gateway.base_url() + "/v1/files/file-1");
  EXPECT_EQ(anthropic.status, 401);
  EXPECT_EQ(upstream_calls(fake), 2);
  gateway.stop();
  EXPECT_EQ(gateway.log().find("passthrough-secret"), std::string::npos) << gateway.log();
}

}  // namespace
