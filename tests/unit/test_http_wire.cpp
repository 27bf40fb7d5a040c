// The HTTP heads the client and the gateway write themselves (src/providers/http_wire.*): exact
// bytes, framing owned by the writer, and every head read back by Beast's own parser.
#include "providers/http_wire.hpp"

#include "llm_caching/errors.hpp"

#include <gtest/gtest.h>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace llm_caching::providers {
namespace {

namespace http = boost::beast::http;

template <bool IsRequest>
http::message<IsRequest, http::string_body> parse(const std::string& head,
                                                  const std::string& body) {
  http::parser<IsRequest, http::string_body> parser;
  parser.eager(true);
  if constexpr (!IsRequest) parser.skip(false);
  boost::system::error_code ec;
  const std::string wire = head + body;
  const std::size_t used = parser.put(boost::asio::buffer(wire), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(used, wire.size());
  EXPECT_TRUE(parser.is_done());
  return parser.release();
}

TEST(RequestHead, WritesTheRequestLineHeadersHostAgentAndLength) {
  const HeaderList headers = {{"authorization", "Bearer sk-test"},
                              {"content-type", "application/json"}};
  const std::string head =
      request_head("POST", "/v1/chat/completions", "api.example.com", headers, 11);
  EXPECT_EQ(head,
            "POST /v1/chat/completions HTTP/1.1\r\n"
            "authorization: Bearer sk-test\r\n"
            "content-type: application/json\r\n"
            "host: api.example.com\r\n"
            "user-agent: llm-caching/0.1\r\n"
            "content-length: 11\r\n"
            "\r\n");
  const auto message = parse<true>(head, R"({"a": true})");
  EXPECT_EQ(message.method(), http::verb::post);
  EXPECT_EQ(message.target(), "/v1/chat/completions");
  EXPECT_EQ(message[http::field::host], "api.example.com");
  EXPECT_EQ(message.body(), R"({"a": true})");
  EXPECT_TRUE(message.keep_alive());
}

TEST(RequestHead, KeepsTheCallersHostAndAgentAndOwnsTheFraming) {
  const HeaderList headers = {{"Host", "proxy.local"},
                              {"User-Agent", "mine/1"},
                              {"Content-Length", "999"},
                              {"Transfer-Encoding", "chunked"},
                              {"Connection", "close"}};
  const std::string head = request_head("POST", "/x", "api.example.com", headers, 2);
  EXPECT_EQ(head,
            "POST /x HTTP/1.1\r\nHost: proxy.local\r\nUser-Agent: mine/1\r\n"
            "content-length: 2\r\n\r\n");
  EXPECT_EQ(parse<true>(head, "{}").body(), "{}");
}

TEST(RequestHead, AGetWithoutBodyHasNoLengthAndAnEmptyPostHasZero) {
  EXPECT_EQ(request_head("GET", "/v1/models", "h", {}, 0),
            "GET /v1/models HTTP/1.1\r\nhost: h\r\nuser-agent: llm-caching/0.1\r\n\r\n");
  EXPECT_NE(request_head("POST", "/", "h", {}, 0).find("content-length: 0\r\n"), std::string::npos);
}

TEST(RequestHead, RefusesALineBreakInAValueWithoutEchoingIt) {
  const HeaderList headers = {{"authorization", "Bearer sk-secret-value\n"}};
  try {
    request_head("POST", "/", "h", headers, 0);
    FAIL() << "a header value with a newline was written";
  } catch (const ConfigurationError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("authorization"), std::string::npos) << message;
    EXPECT_EQ(message.find("sk-secret"), std::string::npos) << message;
  }
  EXPECT_THROW(request_head("POST", "/", "h", {{"x-a", "one\r\nx-b: two"}}, 0), ConfigurationError);
  EXPECT_THROW(request_head("POST", "/", "h", {{"bad name", "v"}}, 0), ConfigurationError);
  EXPECT_THROW(request_head("POST", "/", "h", {{"", "v"}}, 0), ConfigurationError);
  EXPECT_THROW(request_head("POST", "/", "h", {{"x-a", std::string("a\0b", 3)}}, 0),
               ConfigurationError);
}

TEST(ResponseHead, WritesStatusHeadersLengthAndKeepAlive) {
  const HeaderList headers = {{"content-type", "application/json"}, {"x-llm-cache", "MISS"}};
  const std::string head = response_head(200, "OK", headers, 2, true);
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-llm-cache: MISS\r\n"
            "content-length: 2\r\n\r\n");
  const auto message = parse<false>(head, "{}");
  EXPECT_EQ(message.result_int(), 200u);
  EXPECT_EQ(message["x-llm-cache"], "MISS");
  EXPECT_TRUE(message.keep_alive());
}

TEST(ResponseHead, ClosesWhenAskedAndDropsFramingAndBrokenHeaders) {
  const HeaderList headers = {{"content-length", "5"},
                              {"transfer-encoding", "chunked"},
                              {"x-split", "a\r\nx-injected: yes"},
                              {"retry-after", "3"}};
  const std::string head = response_head(429, "Too Many Requests", headers, 4, false);
  EXPECT_EQ(head,
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ncontent-length: 4\r\n"
            "connection: close\r\n\r\n");
  const auto message = parse<false>(head, "busy");
  EXPECT_FALSE(message.keep_alive());
  EXPECT_EQ(message.body(), "busy");
}

TEST(HeaderCheck, NamesAreTokensAndValuesHaveNoLineBreakOrNul) {
  EXPECT_TRUE(is_valid_header("x-Llm_Cache.9", "any value, with: colons"));
  EXPECT_TRUE(is_valid_header("!#$%&'*+-.^_`|~", ""));
  for (const std::string_view name :
       {std::string_view(), std::string_view("x llm"), std::string_view("x:y"),
        std::string_view("x(y)"), std::string_view("caf\xc3\xa9"), std::string_view("x\0y", 3),
        std::string_view("x\x7f")}) {
    EXPECT_FALSE(is_valid_header(name, "v")) << name;
  }
  for (const std::string_view value :
       {std::string_view("a\rb"), std::string_view("a\nb"), std::string_view("a\0b", 3)}) {
    EXPECT_FALSE(is_valid_header("x", value));
  }
  EXPECT_TRUE(is_valid_header("x", "caf\xc3\xa9 \t tab"));  // obs-text and tabs are allowed
}

TEST(ResponseHead, NoLengthWhereHttpForbidsABody) {
  EXPECT_EQ(response_head(204, "No Content", {}, 0, true), "HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(response_head(304, "Not Modified", {}, 0, true), "HTTP/1.1 304 Not Modified\r\n\r\n");
}

}  // namespace
}  // namespace llm_caching::providers
